"""The two-factor rules, as plain functions.

Views, the middleware, the admin and the management commands call these;
nothing else decides who is enrolled, who is verified, what a request may
reach, or how devices are created, confirmed and removed.
"""

from __future__ import annotations

import secrets
import time
from base64 import b32encode
from dataclasses import dataclass
from datetime import datetime, timedelta
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

from . import crypto, events
from .models import AuditEvent, EncryptedTOTPDevice, RecoveryCode, RecoveryCodeDevice, RecoveryCodeHasher

STATE_KEY = "clinicauth_2fa_state"
VERIFIED_KEY = "clinicauth_2fa_verified"
PENDING_SINCE_KEY = "clinicauth_2fa_pending_since"
LOGIN_AT_KEY = "clinicauth_login_at"
SETUP_KEY = "clinicauth_2fa_setup"  # pk of the unconfirmed authenticator this session is setting up
SHOW_CODES_KEY = "clinicauth_2fa_show_codes"  # new recovery codes, encrypted, until shown once

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
    """Called right after the password step: nothing from before carries over.

    Where no second factor applies, the password completes the sign-in.
    """
    for key in (VERIFIED_KEY, STATE_KEY, SETUP_KEY, SHOW_CODES_KEY):
        request.session.pop(key, None)
    request.session[PENDING_SINCE_KEY] = int(time.time())
    request.session[LOGIN_AT_KEY] = int(time.time())
    if request_gate(request) == Gate.OPEN:
        user_record_sign_in(user=request.user)


def pending_login_expired(request: HttpRequest) -> bool:
    since = request.session.get(PENDING_SINCE_KEY)
    if since is None:
        return False
    return time.time() - since > settings.CLINICAUTH_PENDING_LOGIN_TIMEOUT


def mark_verified(request: HttpRequest, device, *, completes_sign_in: bool = True) -> None:
    """The session has passed the second factor: rotate its key and remember it.

    completes_sign_in is False when a session that was already signed in (no 2FA
    needed) sets up an authenticator: that is not a new sign-in for last_login.
    """
    request.session.cycle_key()
    request.session[VERIFIED_KEY] = True
    request.session.pop(PENDING_SINCE_KEY, None)
    request.session.pop(SETUP_KEY, None)
    django_otp.login(request, device)
    _remember_gate(request, Gate.VERIFIED)
    if completes_sign_in:
        user_record_sign_in(user=request.user)


def user_record_sign_in(*, user: User) -> None:
    """Stamp last_login when sign-in is complete: after the second factor, or after the
    password where none applies (Django's own receiver, which stamps it at the password
    step, is disconnected in apps.py)."""
    now = timezone.now()
    User.objects.filter(pk=user.pk).update(last_login=now)
    user.last_login = now


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
            return CodeCheck(error=locked_message((info or {}).get("locked_until")), locked=True)
        verified = device.verify_token(token)
    if verified:
        if kind == "recovery":
            events.record(AuditEvent.Action.RECOVERY_CODE_USED, actor=user, target=user, request=request)
            events.notify(user, "recovery_code_used", remaining=recovery_codes_left(user))
        return CodeCheck(device=device)

    if kind == "totp" and device.code_was_used(token):
        events.record(AuditEvent.Action.CODE_REPLAYED, actor=user, target=user, request=request)
        return CodeCheck(error=events.message("code_replayed"), replayed=True)
    _record_if_now_locked(device, ip_address=events.client_ip(request), user=user)
    return CodeCheck(error=events.message("code_invalid"))


def _record_if_now_locked(device, *, ip_address: str | None, user: User) -> None:
    """Audit the failure that locks code entry (once, not on every later refusal)."""
    if device.throttling_failure_count == settings.CLINICAUTH_CODE_LOCKOUT_FAILURES:
        events.record(
            AuditEvent.Action.CODE_THROTTLED,
            actor=user,
            target=user,
            request=None,
            ip_address=ip_address,
            detail=f"{device.throttling_failure_count} consecutive failed codes",
        )


def locked_message(locked_until: datetime | None) -> str:
    """What to tell someone whose code entry is locked (None: until a reset)."""
    if locked_until is None:
        return events.message("code_hard_locked")
    seconds = max(1, int((locked_until - timezone.now()).total_seconds()) + 1)
    if seconds > 120:
        return events.message("code_locked_minutes", minutes=(seconds + 59) // 60)
    return events.message("code_locked", seconds=seconds, unit="second" if seconds == 1 else "seconds")


# --- enrolment ------------------------------------------------------------

# A password-holder could otherwise open set-up in many browsers and pile up rows.
MAX_LIVE_SETUPS_PER_USER = 5


class SetupExpired(Exception):
    """The set-up this session started is gone: it expired, or another session finished first."""


class CodeLocked(Exception):
    """Code entry is locked; `until` is None for the lock only a reset clears."""

    def __init__(self, until: datetime | None):
        super().__init__(until)
        self.until = until


class CodeInvalid(Exception):
    """The code did not match."""


def _setup_is_stale(device: EncryptedTOTPDevice, now: datetime) -> bool:
    return device.created_at is None or now - device.created_at > timedelta(seconds=settings.CLINICAUTH_SETUP_TIMEOUT)


def totp_setup_device(*, user: User, device_id: int | None) -> EncryptedTOTPDevice | None:
    """The unconfirmed authenticator one set-up session started, while it is still live."""
    if not isinstance(device_id, int):
        return None
    device = EncryptedTOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()
    if device is None or _setup_is_stale(device, timezone.now()):
        return None
    return device


def totp_setup_begin(*, user: User) -> EncryptedTOTPDevice:
    """A fresh secret for one set-up session; no other session ever sees it.

    Wrong codes at set-up count per account, not per secret: the new device
    starts with the highest failure count of the user's earlier set-ups, so
    opening a new browser does not clear a set-up lockout (only a reset does).
    """
    now = timezone.now()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).exists()
        pending = list(EncryptedTOTPDevice.objects.filter(user=user, confirmed=False).order_by("-created_at", "-pk"))
        failures = max((d.throttling_failure_count for d in pending), default=0)
        last_failure = max((d.throttling_failure_timestamp for d in pending if d.throttling_failure_timestamp), default=None)
        live = [d for d in pending if not _setup_is_stale(d, now)]
        keep = {d.pk for d in live[: MAX_LIVE_SETUPS_PER_USER - 1]}
        EncryptedTOTPDevice.objects.filter(pk__in=[d.pk for d in pending if d.pk not in keep]).delete()
        return EncryptedTOTPDevice.objects.create(
            user=user,
            name="Authenticator app",
            confirmed=False,
            throttling_failure_count=failures,
            throttling_failure_timestamp=last_failure,
        )


def manual_entry_key(device: EncryptedTOTPDevice) -> str:
    """The base32 secret in groups of four, as authenticator apps expect it typed."""
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def totp_confirm(*, user: User, device_id: int | None, token: str, ip_address: str | None) -> tuple[EncryptedTOTPDevice, list[str]]:
    """Confirm the set-up session's own device with a code from the app; returns it and new recovery codes.

    The user row is locked first, so when two sessions confirm at once exactly
    one wins; the winner removes every other unconfirmed set-up, and the loser
    finds its device gone (SetupExpired). The confirming code is consumed
    (last_t), so it cannot be replayed to log in.
    Raises SetupExpired, CodeLocked or CodeInvalid.
    """
    refusal: Exception | None = None
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).exists()
        device = (
            EncryptedTOTPDevice.objects.select_for_update()
            .filter(pk=device_id if isinstance(device_id, int) else None, user=user, confirmed=False)
            .first()
        )
        if device is None or _setup_is_stale(device, timezone.now()):
            raise SetupExpired()
        allowed, info = device.verify_is_allowed()
        if not allowed:
            refusal = CodeLocked((info or {}).get("locked_until"))
        elif not device.verify_token(token):
            _record_if_now_locked(device, ip_address=ip_address, user=user)
            refusal = CodeInvalid()
        else:
            EncryptedTOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            codes = _issue_recovery_codes(user)
            _bump_stamp(user)
            events.record(
                AuditEvent.Action.DEVICE_CONFIRMED, actor=user, target=user, request=None, ip_address=ip_address
            )
            events.notify(user, "enabled")
    # Raised after the block so the failure count written above is kept.
    if refusal is not None:
        raise refusal
    return device, codes


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


# --- the set-up and recovery-code pages' session state --------------------


def session_setup_device_id(request: HttpRequest) -> int | None:
    return request.session.get(SETUP_KEY)


def remember_setup_device(request: HttpRequest, device: EncryptedTOTPDevice | None) -> None:
    if device is None:
        request.session.pop(SETUP_KEY, None)
    else:
        request.session[SETUP_KEY] = device.pk


def stash_codes_to_show(request: HttpRequest, codes: list[str], *, continue_url: str) -> None:
    """Keep new recovery codes (encrypted) until the next GET shows them once (POST-redirect-GET)."""
    request.session[SHOW_CODES_KEY] = {
        "codes": crypto.encrypt("\n".join(codes).encode()),
        "continue": continue_url,
    }


def take_codes_to_show(request: HttpRequest) -> tuple[list[str], str] | None:
    """The codes stashed for this session, removed as they are read: a reload shows nothing."""
    stashed = request.session.pop(SHOW_CODES_KEY, None)
    if not stashed:
        return None
    return crypto.decrypt(stashed["codes"]).decode().split("\n"), stashed["continue"]


# --- turning 2FA off ------------------------------------------------------


def can_disable_own_2fa(user: User) -> bool:
    return not two_factor_required(user)


@dataclass(frozen=True)
class TwoFactorState:
    """Everything a reset would remove, as an admin or operator needs to hear it."""

    enrolled: bool
    setups_in_progress: int
    setup_failures: int
    recovery_codes_left: int

    @property
    def setup_locked(self) -> bool:
        return self.setup_failures >= settings.CLINICAUTH_CODE_LOCKOUT_FAILURES

    @property
    def anything_to_reset(self) -> bool:
        return self.enrolled or self.setups_in_progress > 0 or self.setup_failures > 0 or self.recovery_codes_left > 0


def twofa_state(user: User) -> TwoFactorState:
    now = timezone.now()
    apps = list(EncryptedTOTPDevice.objects.filter(user=user))
    pending = [device for device in apps if not device.confirmed]
    return TwoFactorState(
        enrolled=any(device.confirmed for device in apps),
        setups_in_progress=sum(1 for device in pending if not _setup_is_stale(device, now)),
        # Failures carry over to the next set-up, so a stale set-up's count still matters.
        setup_failures=max((device.throttling_failure_count for device in pending), default=0),
        recovery_codes_left=RecoveryCode.objects.filter(device__user=user).count(),
    )


def twofa_reset(
    *,
    user: User,
    actor: User | None,
    action: AuditEvent.Action,
    ip_address: str | None = None,
) -> TwoFactorState:
    """Remove every authenticator of the user, confirmed or still being set up, their
    recovery codes and with them every code lockout, and end all their sessions.

    Returns what was removed; when that was nothing, nothing changes (no stamp,
    no audit, no e-mail, sessions kept).
    """
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        removed = twofa_state(user)
        if not removed.anything_to_reset:
            return removed
        EncryptedTOTPDevice.objects.filter(user=user).delete()
        RecoveryCodeDevice.objects.filter(user=user).delete()
        user.session_nonce = new_session_nonce()
        user.twofa_stamp = F("twofa_stamp") + 1
        user.save(update_fields=["session_nonce", "twofa_stamp"])
        user.refresh_from_db(fields=["session_nonce", "twofa_stamp"])
        events.record(
            action, actor=actor, target=user, request=None, ip_address=ip_address, detail=describe_state(removed)
        )
        if removed.enrolled:
            events.notify(user, "disabled", actor=actor, action=action)
    return removed


def describe_state(state: TwoFactorState) -> str:
    """One line for the audit log and the operator's terminal."""
    parts = []
    if state.enrolled:
        parts.append("authenticator app")
    if state.setups_in_progress or state.setup_failures:
        text = "set-up in progress"
        if state.setup_locked:
            text += f", locked after {state.setup_failures} wrong codes"
        elif state.setup_failures:
            text += f", {state.setup_failures} wrong codes"
        parts.append(text)
    if state.recovery_codes_left:
        parts.append(f"{state.recovery_codes_left} recovery codes")
    return "; ".join(parts) or "nothing"


def disable_own_2fa(*, request: HttpRequest) -> bool:
    """The user turns their own 2FA off: every other session ends, this one carries on."""
    user = request.user
    removed = twofa_reset(
        user=user, actor=user, action=AuditEvent.Action.DISABLED_BY_SELF, ip_address=events.client_ip(request)
    )
    if not removed.anything_to_reset:
        return False
    user.refresh_from_db(fields=["session_nonce", "twofa_stamp"])
    update_session_auth_hash(request, user)
    request.session.pop(VERIFIED_KEY, None)
    request.session.pop(STATE_KEY, None)
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
