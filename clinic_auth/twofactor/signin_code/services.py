"""One-time sign-in codes a clinic admin issues for a member who lost their phone."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .. import audit, codes, devices, services
from ..base import RecoveryCodeHasher
from ..models import AuditEvent, RecoveryCodeDevice
from .models import AdminIssuedCodeDevice


# Checked when the user has no issued code, so a wrong code costs the same hash either way.
_NO_CODE_HASH = RecoveryCodeHasher().encode("00000000", "no-issued-code")


def signin_code_verify(*, user, token: str, ip_address: str | None, completes_sign_in: bool = False) -> AdminIssuedCodeDevice:
    """Use the code an admin issued for the user: once, within its hour; audited, with who issued
    it, and the member is told by e-mail. Raises CodeInvalid or CodeLocked.

    Wrong 8-digit codes count on the user's recovery codes' throttle, the one every one-time code
    shares, whether or not a code was issued; with none, the same hash work is done against a
    stand-in. So neither the answer, nor its delay, nor a lock tells whether an admin issued one.
    """
    refusal: codes.CodeRefused | None = None
    with transaction.atomic():
        counter = devices.confirmed_device_for_update(RecoveryCodeDevice, user, lock_user=completes_sign_in)
        issued = AdminIssuedCodeDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        throttle = counter or issued
        if throttle is None:  # no way in with a one-time code at all
            RecoveryCodeHasher().verify(token, _NO_CODE_HASH)
            raise codes.CodeInvalid("signin")
        refusal = codes.lockout_reason(throttle)
        if refusal is None:
            if issued is not None:
                matched = issued.use_code(token)
            else:
                RecoveryCodeHasher().verify(token, _NO_CODE_HASH)
                matched = False
            if matched:
                issued.record_success(*issued.USE_CODE_FIELDS)
                if throttle is not issued:
                    throttle.throttle_reset(commit=False)
                    throttle.save(update_fields=throttle.THROTTLE_FIELDS)
                by = issued.issued_by.username if issued.issued_by else "a deleted account"
                audit.record(AuditEvent.Action.SIGNIN_CODE_USED, actor=user, target=user, ip_address=ip_address, detail=f"issued by {by}")
                audit.notify(user, "signin_code/email/used", ip_address=ip_address)
                if completes_sign_in:
                    services.user_record_sign_in(user=user)
            else:
                throttle.record_failure()
                codes.record_if_now_locked(throttle, user=user, ip_address=ip_address)
                refusal = codes.CodeInvalid("signin")
    # Raised after the block so the failure count written inside it is kept.
    if refusal is not None:
        raise refusal
    return issued


class SelfIssueRefused(Exception):
    """An admin cannot issue a one-time sign-in code for their own account."""


SIGNIN_CODE_DIGITS = 8
SIGNIN_CODE_LIFETIME = timedelta(hours=1)


def signin_code_issue(*, user, actor, ip_address: str | None = None) -> tuple[str, datetime]:
    """A new 8-digit one-time sign-in code for the member (returned once, stored hashed),
    valid for an hour; any earlier code of theirs stops working, and a lock on their one-time codes
    is lifted. Returns (code, expires_at).

    Raises SelfIssueRefused when the admin names themselves.
    """
    if actor is not None and actor.pk == user.pk:
        raise SelfIssueRefused()
    code = "".join(secrets.choice("0123456789") for _ in range(SIGNIN_CODE_DIGITS))
    expires_at = timezone.now() + SIGNIN_CODE_LIFETIME
    hasher = RecoveryCodeHasher()
    with transaction.atomic():
        services.user_row_lock(user=user)
        AdminIssuedCodeDevice.objects.filter(user=user).delete()
        # The code counts on the one-time codes' throttle (signin_code_verify): a member locked out
        # by wrong recovery codes is exactly who an admin issues one for.
        RecoveryCodeDevice.objects.filter(user=user).update(throttling_failure_count=0, throttling_failure_timestamp=None)
        AdminIssuedCodeDevice.objects.create(
            user=user,
            name="One-time sign-in code",
            confirmed=True,
            code_hash=hasher.encode(code, hasher.salt()),
            expires_at=expires_at,
            issued_by=actor,
        )
        audit.record(
            AuditEvent.Action.SIGNIN_CODE_ISSUED,
            actor=actor,
            target=user,
            ip_address=ip_address,
            detail=f"valid until {expires_at:%Y-%m-%d %H:%M %Z}",
        )
        audit.notify(user, "signin_code/email/issued", actor=actor, expires_at=expires_at)
    return code, expires_at


def signin_code_revoke(*, user) -> int:
    """An unused one-time sign-in code dies with the account's deactivation; returns how many went."""
    return AdminIssuedCodeDevice.objects.filter(user=user).delete()[0]
