"""One-time sign-in codes a clinic admin issues for a member who lost their phone."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .. import audit, codes, services
from ..base import RecoveryCodeHasher
from ..models import AuditEvent
from .models import AdminIssuedCodeDevice


def signin_code_verify(*, user, token: str, ip_address: str | None, completes_sign_in: bool = False) -> AdminIssuedCodeDevice:
    """Use the code an admin issued for the user (codes.check_code): once, within its hour; audited,
    with who issued it, and the member is told by e-mail. Raises CodeInvalid or CodeLocked."""

    def used(device):
        issuer = device.issued_by.username if device.issued_by else "a deleted account"
        audit.record(
            AuditEvent.Action.SIGNIN_CODE_USED, actor=user, target=user, ip_address=ip_address, detail=f"issued by {issuer}"
        )
        audit.notify(user, "signin_code/email/used", ip_address=ip_address)

    return codes.check_code(
        AdminIssuedCodeDevice, method="signin", user=user, token=token, ip_address=ip_address,
        completes_sign_in=completes_sign_in, accepted=used,
    )


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
        services.user_row_lock(user=user)
        AdminIssuedCodeDevice.objects.filter(user=user).delete()
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
