"""The one way the app sends e-mail: rendered from templates now, sent once the change commits."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

logger = logging.getLogger(__name__)


def queue_email(*, to: str, template: str, context: dict) -> None:
    """Render `<template>_subject.txt` and `<template>.txt` now; send them once the surrounding
    transaction commits (at once outside one).

    Sending on commit means a rolled-back change sends nothing, and a mail outage never undoes or
    hides a change that already happened: the failure is logged. Every template gets `when` (now)
    and `product` (CLINICAUTH_PRODUCT_NAME) besides `context`.
    """
    if not to:
        return
    context = {"when": timezone.now(), "product": settings.CLINICAUTH_PRODUCT_NAME, **context}
    subject = render_to_string(f"{template}_subject.txt", context).strip()
    body = render_to_string(f"{template}.txt", context)

    def send() -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
        except Exception:  # a mail outage must not undo or hide a change that happened
            logger.exception("Could not send the %s e-mail", template)

    transaction.on_commit(send)
