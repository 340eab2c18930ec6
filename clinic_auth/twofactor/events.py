"""The audit trail and the security e-mails (the words on screen are in texts.py)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from .models import AuditEvent

logger = logging.getLogger(__name__)


def record(
    action: AuditEvent.Action,
    *,
    actor,
    target,
    ip_address: str | None = None,
    clinic=None,
    detail: str = "",
) -> AuditEvent:
    """Write one audit row (services pass the client address; they never see the request)."""
    if clinic is None:
        clinic_id = getattr(target, "clinic_id", None) or getattr(actor, "clinic_id", None)
    else:
        clinic_id = clinic.pk
    return AuditEvent.objects.create(
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        target=target if getattr(target, "pk", None) else None,
        actor_username=getattr(actor, "username", "") or "",
        target_username=getattr(target, "username", "") or "",
        clinic_id=clinic_id,
        ip_address=ip_address,
        detail=detail,
    )


def notify(user, template: str, **context) -> None:
    """Email the account holder about a change to their 2FA, after the change commits."""
    if not user.email:
        return
    context = {"user": user, "when": timezone.now(), "product": settings.CLINICAUTH_PRODUCT_NAME, **context}
    subject = render_to_string(f"twofactor/email/{template}_subject.txt", context).strip()
    body = render_to_string(f"twofactor/email/{template}.txt", context)

    def send() -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
        except Exception:  # a mail outage must not undo or hide a security change
            logger.exception("Could not send the %s security email to user %s", template, user.pk)

    transaction.on_commit(send)
