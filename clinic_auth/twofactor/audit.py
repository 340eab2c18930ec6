"""The audit trail and the security e-mails (the words on screen are in texts.py)."""

from __future__ import annotations

import logging

from django.db import transaction

from clinic_auth.mail import queue_email

from .models import AuditEvent

# One JSON line per audit event, for an operator to ship (settings.LOGGING), beside the audit table.
security_log = logging.getLogger("clinicauth.security")


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
    event = AuditEvent.objects.create(
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        target=target if getattr(target, "pk", None) else None,
        actor_username=getattr(actor, "username", "") or "",
        target_username=getattr(target, "username", "") or "",
        clinic_id=clinic_id,
        ip_address=ip_address,
        detail=detail,
    )
    line = {
        "event_id": event.pk,
        "action": event.action,
        "clinic": clinic_id,
        "actor": event.actor_username or None,
        "member": event.target_username or None,
        "ip": ip_address,
        "detail": detail or None,
    }
    # Once it commits: a rolled-back change logs nothing it did not do.
    transaction.on_commit(lambda: security_log.info("audit event", extra=line))
    return event


def notify(user, template: str, **context) -> None:
    """E-mail the account holder about a change to their 2FA, once the change commits.

    `template` names the e-mail under templates/twofactor/ ("email/enabled", "totp/email/app_replaced").
    """
    queue_email(to=user.email, template=f"twofactor/{template}", context={"user": user, **context})
