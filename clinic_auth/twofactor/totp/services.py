"""The authenticator app (TOTP): set-up, confirmation and the code check. Writes with every side
effect, and nothing that sees a request."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import audit, codes, devices, services
from ..models import AdminIssuedCodeDevice, AuditEvent
from ..recovery import services as recovery_services
from .models import EncryptedTOTPDevice

# A password-holder could otherwise open set-up in many browsers and pile up rows.
MAX_LIVE_SETUPS_PER_USER = 5


class SetupExpired(Exception):
    """The set-up this session started is gone: it expired, or another session finished first."""


def totp_verify(*, user, token: str, ip_address: str | None, completes_sign_in: bool = False) -> EncryptedTOTPDevice:
    """Check a 6-digit code from the user's app (codes.check_code); a real code used before is
    refused as replayed, and audited. Raises CodeInvalid, CodeReplayed or CodeLocked."""

    def replayed(device, token):
        if not device.code_was_used(token):
            return None
        audit.record(AuditEvent.Action.CODE_REPLAYED, actor=user, target=user, ip_address=ip_address)
        return codes.CodeReplayed()

    return codes.check_code(
        EncryptedTOTPDevice, method="totp", user=user, token=token, ip_address=ip_address,
        completes_sign_in=completes_sign_in, refusal_for=replayed,
    )


def totp_setup_begin(*, user) -> EncryptedTOTPDevice:
    """A fresh secret for one set-up session; no other session ever sees it.

    Wrong codes at set-up count per account, not per secret: the new device
    starts with the highest failure count of the user's earlier set-ups, so
    opening a new browser does not clear a set-up lockout (only a reset does).
    """
    now = timezone.now()
    with transaction.atomic():
        services.user_row_lock(user=user)
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
    refusal: codes.CodeRefused | None = None
    with transaction.atomic():
        services.user_row_lock(user=user)
        device = (
            EncryptedTOTPDevice.objects.select_for_update()
            .filter(pk=device_id if isinstance(device_id, int) else None, user=user, confirmed=False)
            .first()
        )
        if device is None or devices.setup_is_stale(device, timezone.now()):
            raise SetupExpired()
        refusal = codes.lockout_reason(device)
        if refusal is None and not device.verify_token(token):
            codes.record_if_now_locked(device, user=user, ip_address=ip_address)
            refusal = codes.CodeInvalid("totp")
        if refusal is None:
            first = not devices.is_enrolled(user)
            # After a one-time sign-in code, the new app replaces the old one (kept working until now).
            replaces = EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).exists()
            EncryptedTOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            if replaces:
                AdminIssuedCodeDevice.objects.filter(user=user).delete()
                audit.record(AuditEvent.Action.APP_REPLACED, actor=user, target=user, ip_address=ip_address)
                audit.notify(user, "totp/email/app_replaced")
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            # Recovery codes come with the first method; a second one keeps the codes the user saved.
            recovery_codes = recovery_services.recovery_codes_issue(user=user) if first else []
            services.twofa_stamp_bump(user=user)
            audit.record(AuditEvent.Action.DEVICE_CONFIRMED, actor=user, target=user, ip_address=ip_address)
            if first:
                audit.notify(user, "email/enabled")
    if refusal is not None:
        raise refusal
    return device, recovery_codes


def totp_setups_expired_delete(*, now) -> int:
    """Delete set-ups nobody finished: past SETUP_TIMEOUT, and past any set-up lockout they carry
    (totp_setup_begin reads a lockout from the user's earlier set-ups). Returns how many."""
    setup_ended = now - timedelta(seconds=settings.CLINICAUTH_SETUP_TIMEOUT)
    lockout_ended = now - timedelta(seconds=settings.CLINICAUTH_CODE_LOCKOUT_SECONDS)
    return EncryptedTOTPDevice.objects.filter(
        Q(throttling_failure_timestamp__isnull=True) | Q(throttling_failure_timestamp__lt=lockout_ended),
        confirmed=False,
        created_at__lt=setup_ended,
    ).delete()[0]

