"""The two-factor rules, as plain functions.

Views, the middleware, the admin and the management commands call these;
nothing else decides who is enrolled, who is verified, what a request may
reach, or how devices are created, confirmed and removed.
"""

from __future__ import annotations

import secrets
import time
from base64 import b32encode
from dataclasses import dataclass, field
from enum import StrEnum

import django_otp
from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.urls import Resolver404, resolve
from django.utils import timezone

from clinics.models import Clinic
from users.models import User, new_session_nonce

from . import events
from .models import AuditEvent, EncryptedTOTPDevice, RecoveryCode, RecoveryCodeDevice, RecoveryCodeHasher

STATE_KEY = "clinicauth_2fa_state"
VERIFIED_KEY = "clinicauth_2fa_verified"
PENDING_SINCE_KEY = "clinicauth_2fa_pending_since"
LOGIN_AT_KEY = "clinicauth_login_at"

RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
RECOVERY_CODE_LENGTH = 10


class Gate(StrEnum):
    """What an authenticated session may do right now."""

    OPEN = "open"  # no device and none required
    VERIFIED = "verified"  # passed the second factor
    CHALLENGE = "challenge"  # has a device, has not entered a code yet
    SETUP = "setup"  # clinic requires 2FA and the user has no device


ALLOWED_GATES = frozenset({Gate.OPEN, Gate.VERIFIED})

# Views reachable from each blocked gate, by URL name (never by path prefix).
EXEMPT_VIEW_NAMES = {
    Gate.CHALLENGE: frozenset({"login", "root", "logout", "two_factor_challenge"}),
    Gate.SETUP: frozenset({"login", "root", "logout", "two_factor_setup"}),
}
GATE_VIEW_NAME = {Gate.CHALLENGE: "two_factor_challenge", Gate.SETUP: "two_factor_setup"}


# --- who is enrolled ------------------------------------------------------


def totp_issuer(device: EncryptedTOTPDevice) -> str:
    """Issuer shown in authenticator apps: the product plus the clinic."""
    clinic = device.user.clinic
    product = settings.CLINICAUTH_PRODUCT_NAME
    return f"{product} ({clinic.name})" if clinic else product


def confirmed_totp_device(user: User) -> EncryptedTOTPDevice | None:
    return EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def recovery_device(user: User) -> RecoveryCodeDevice | None:
    return RecoveryCodeDevice.objects.filter(user=user, confirmed=True).first()


def is_enrolled(user: User) -> bool:
    """Enrolled means a confirmed authenticator app; recovery codes alone never count."""
    return EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).exists()


def clinic_requires_2fa(user: User) -> bool:
    if user.clinic_id is None:
        return False
    return Clinic.objects.filter(pk=user.clinic_id, mandatory_2fa=True).exists()


def two_factor_required(user: User) -> bool:
    """Required by the clinic's policy, and always for Django admin (operator) accounts."""
    return user.is_staff or user.is_superuser or clinic_requires_2fa(user)


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(device__user=user, device__confirmed=True).count()


# --- what a request may reach ---------------------------------------------


def request_gate(request: HttpRequest) -> Gate:
    """The gate for this session, from the session cache while the user's stamp holds.

    The stamp on the user row changes whenever devices or the clinic policy
    change, so a verified user's request costs no query here.
    """
    user = request.user
    if not user.is_authenticated:
        return Gate.OPEN
    cached = request.session.get(STATE_KEY)
    if cached and cached.get("stamp") == gate_stamp(user):
        return Gate(cached["gate"])
    if is_enrolled(user):
        gate = Gate.VERIFIED if request.session.get(VERIFIED_KEY) else Gate.CHALLENGE
    else:
        gate = Gate.SETUP if two_factor_required(user) else Gate.OPEN
    _remember_gate(request, gate)
    return gate


def gate_stamp(user: User) -> str:
    """Everything on the user row the gate depends on.

    twofa_stamp covers devices and the clinic flag; the rest catches an
    operator moving the user to another clinic or granting admin-site access.
    """
    return f"{user.twofa_stamp}:{user.clinic_id}:{int(user.is_staff)}:{int(user.is_superuser)}"


def _remember_gate(request: HttpRequest, gate: Gate) -> None:
    request.session[STATE_KEY] = {"stamp": gate_stamp(request.user), "gate": str(gate)}


def view_name_for_path(path: str) -> str | None:
    try:
        return resolve(path).view_name
    except Resolver404:
        return None


def is_exempt(gate: Gate, view_name: str | None) -> bool:
    return view_name is not None and view_name in EXEMPT_VIEW_NAMES.get(gate, ())


def start_login(request: HttpRequest) -> None:
    """Called right after the password step: nothing from before carries over."""
    request.session.pop(VERIFIED_KEY, None)
    request.session.pop(STATE_KEY, None)
    request.session[PENDING_SINCE_KEY] = int(time.time())
    request.session[LOGIN_AT_KEY] = int(time.time())


def pending_login_expired(request: HttpRequest) -> bool:
    since = request.session.get(PENDING_SINCE_KEY)
    if since is None:
        return False
    return time.time() - since > settings.CLINICAUTH_PENDING_LOGIN_TIMEOUT


def mark_verified(request: HttpRequest, device) -> None:
    """The session has passed the second factor: rotate its key and remember it."""
    request.session.cycle_key()
    request.session[VERIFIED_KEY] = True
    request.session.pop(PENDING_SINCE_KEY, None)
    django_otp.login(request, device)
    _remember_gate(request, Gate.VERIFIED)


# --- checking codes -------------------------------------------------------


@dataclass
class CodeCheck:
    device: object | None = None
    error: str = ""
    locked: bool = False
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.device is not None


def check_code(*, request: HttpRequest, user: User, kind: str, token: str) -> CodeCheck:
    """Verify a normalised code ("totp" or "recovery") for a user.

    The pattern of django_otp.verify_token: the device row is locked for the
    whole check, so two parallel requests never both pass the throttle or both
    use one code. The device is found and locked by the same query.
    """
    model = EncryptedTOTPDevice if kind == "totp" else RecoveryCodeDevice
    with transaction.atomic():
        device = model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
        if device is None:
            return CodeCheck(error=events.message("code_invalid"))
        allowed, info = device.verify_is_allowed()
        if not allowed:
            return CodeCheck(error=_locked_message(info), locked=True)
        verified = device.verify_token(token)
    if verified:
        if kind == "recovery":
            events.record(AuditEvent.Action.RECOVERY_CODE_USED, actor=user, target=user, request=request)
            events.notify(user, "recovery_code_used", remaining=recovery_codes_left(user))
        return CodeCheck(device=device)

    if kind == "totp" and device.code_was_used(token):
        events.record(AuditEvent.Action.CODE_REPLAYED, actor=user, target=user, request=request)
        return CodeCheck(error=events.message("code_replayed"), replayed=True)
    _record_if_now_locked(device, request=request, user=user)
    return CodeCheck(error=events.message("code_invalid"))


def _record_if_now_locked(device, *, request: HttpRequest, user: User) -> None:
    """Audit the failure that locks code entry (once, not on every later refusal)."""
    if device.throttling_failure_count == settings.CLINICAUTH_CODE_LOCKOUT_FAILURES:
        events.record(
            AuditEvent.Action.CODE_THROTTLED,
            actor=user,
            target=user,
            request=request,
            detail=f"{device.throttling_failure_count} consecutive failed codes",
        )


def _locked_message(info: dict | None) -> str:
    locked_until = (info or {}).get("locked_until")
    if locked_until is None:
        return events.message("code_hard_locked")
    seconds = max(1, int((locked_until - timezone.now()).total_seconds()) + 1)
    if seconds > 120:
        return events.message("code_locked_minutes", minutes=(seconds + 59) // 60)
    return events.message("code_locked", seconds=seconds, unit="second" if seconds == 1 else "seconds")


# --- enrolment ------------------------------------------------------------


def pending_totp_device(user: User) -> EncryptedTOTPDevice:
    """The unconfirmed device being set up; the same one on every reload."""
    device = EncryptedTOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = EncryptedTOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def manual_entry_key(device: EncryptedTOTPDevice) -> str:
    """The base32 secret in groups of four, as authenticator apps expect it typed."""
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@dataclass
class Enrolment:
    device: EncryptedTOTPDevice | None = None
    recovery_codes: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.device is not None


def confirm_totp_device(*, request: HttpRequest, user: User, token: str) -> Enrolment:
    """Confirm the pending device with a code from the app, then issue recovery codes.

    The confirming code is consumed (last_t), so it cannot be replayed to log in.
    """
    pending = EncryptedTOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if pending is None:
        return Enrolment(error=events.message("setup_expired"))
    allowed, info = pending.verify_is_allowed()
    if not allowed:
        return Enrolment(error=_locked_message(info))
    with transaction.atomic():
        verified = django_otp.verify_token(user, pending.persistent_id, token)
        if verified is None:
            pending.refresh_from_db()
            _record_if_now_locked(pending, request=request, user=user)
            return Enrolment(error=events.message("setup_code_invalid"))
        EncryptedTOTPDevice.objects.filter(user=user).exclude(pk=verified.pk).delete()
        verified.confirmed = True
        verified.save(update_fields=["confirmed"])
        codes = _issue_recovery_codes(user)
        _bump_stamp(user)
        events.record(AuditEvent.Action.DEVICE_CONFIRMED, actor=user, target=user, request=request)
    events.notify(user, "enabled")
    mark_verified(request, verified)
    return Enrolment(device=verified, recovery_codes=codes)


def regenerate_recovery_codes(*, request: HttpRequest, user: User) -> list[str]:
    with transaction.atomic():
        codes = _issue_recovery_codes(user)
        events.record(AuditEvent.Action.RECOVERY_CODES_REGENERATED, actor=user, target=user, request=request)
    events.notify(user, "recovery_regenerated")
    return codes


def _issue_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes; only hashes are stored."""
    RecoveryCodeDevice.objects.filter(user=user).delete()
    device = RecoveryCodeDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    hasher = RecoveryCodeHasher()
    codes = [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(settings.CLINICAUTH_RECOVERY_CODE_COUNT)
    ]
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, code_hash=hasher.encode(code, hasher.salt())) for code in codes
    )
    return [format_recovery_code(code) for code in codes]


def format_recovery_code(code: str) -> str:
    half = RECOVERY_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


# --- turning 2FA off ------------------------------------------------------


def can_disable_own_2fa(user: User) -> bool:
    return not two_factor_required(user)


def disable_2fa(
    *,
    user: User,
    actor: User | None,
    request: HttpRequest | None,
    action: AuditEvent.Action,
) -> bool:
    """Remove every device of the user and end their sessions.

    Returns False (and changes nothing) when the user had no 2FA. When users
    turn it off themselves, their current session survives; every other one ends.
    """
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        had_2fa = EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).exists()
        if not had_2fa:
            return False
        EncryptedTOTPDevice.objects.filter(user=user).delete()
        RecoveryCodeDevice.objects.filter(user=user).delete()
        user.session_nonce = new_session_nonce()
        user.twofa_stamp = F("twofa_stamp") + 1
        user.save(update_fields=["session_nonce", "twofa_stamp"])
        user.refresh_from_db(fields=["session_nonce", "twofa_stamp"])
        events.record(action, actor=actor, target=user, request=request)
    if request is not None and actor is not None and actor.pk == user.pk:
        update_session_auth_hash(request, user)
        request.user.twofa_stamp = user.twofa_stamp
        request.session.pop(VERIFIED_KEY, None)
        request.session.pop(STATE_KEY, None)
    events.notify(user, "disabled", actor=actor, action=action)
    return True


def end_user_sessions(user: User) -> None:
    """End every session of the user (e.g. after a password change elsewhere)."""
    User.objects.filter(pk=user.pk).update(session_nonce=new_session_nonce())


# --- clinic policy --------------------------------------------------------


def record_mandatory_change(*, clinic: Clinic, actor: User, request: HttpRequest) -> None:
    """Apply a change of the clinic's Mandatory 2FA flag to every session at once.

    Bumping each member's stamp makes the middleware re-evaluate them on their
    next request, so users already logged in are caught without waiting.
    """
    User.objects.filter(clinic=clinic).update(twofa_stamp=F("twofa_stamp") + 1)
    if request.user.pk and request.user.clinic_id == clinic.pk:
        request.user.refresh_from_db(fields=["twofa_stamp"])
    action = AuditEvent.Action.MANDATORY_ON if clinic.mandatory_2fa else AuditEvent.Action.MANDATORY_OFF
    events.record(action, actor=actor, target=None, clinic=clinic, request=request)


def _bump_stamp(user: User) -> None:
    User.objects.filter(pk=user.pk).update(twofa_stamp=F("twofa_stamp") + 1)
    user.refresh_from_db(fields=["twofa_stamp"])
