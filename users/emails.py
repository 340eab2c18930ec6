"""E-mails about a member's account, sent through Django's mail framework after the change commits."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

logger = logging.getLogger(__name__)


def queue_email(*, to: str, template: str, context: dict) -> None:
    """Render users/email/<template>.txt now, send it once the surrounding transaction commits.

    Sending on commit means a rolled-back change sends nothing, and a mail outage
    never undoes a change that already happened.
    """
    if not to:
        return
    context = {"when": timezone.now(), "product": settings.CLINICAUTH_PRODUCT_NAME, **context}
    subject = render_to_string(f"users/email/{template}_subject.txt", context).strip()
    body = render_to_string(f"users/email/{template}.txt", context)

    def send() -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
        except Exception:
            logger.exception("Could not send the %s e-mail", template)

    transaction.on_commit(send)
