"""What piles up and is no longer needed, deleted: the work of `manage.py cleanup`, which operators
schedule (docs/operations.md). Each step is its own short statement, so the command can run while
the clinic works."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import Exists, OuterRef, Q
from mailer.models import Message, MessageLog

from clinic_auth.twofactor.totp import services as totp_services

from . import login_throttle, reset_throttle
from .models import LoginThrottle, UserSession

# A throttle row is needed while its window counts or its lock holds; the longest window is the reset one.
THROTTLE_KEPT = max(login_throttle.WINDOW, reset_throttle.WINDOW)
# Delivered mail is kept in django-mailer's log this long, for "did the e-mail go out?".
SENT_MAIL_KEPT = timedelta(days=30)


def housekeeping_run(*, now: datetime) -> dict[str, int]:
    """Delete what no longer counts; returns how many rows of each kind went."""
    expired_sessions = Session.objects.filter(expire_date__lte=now).delete()[0]
    throttles = LoginThrottle.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lte=now), window_started_at__lt=now - THROTTLE_KEPT
    ).delete()[0]
    # A browser row outlives its session only to tell a returning cookie why it was signed out
    # (users.middleware); that cookie is gone after SESSION_COOKIE_AGE.
    session_alive = Session.objects.filter(session_key=OuterRef("session_key"))
    browsers = (
        UserSession.objects.filter(~Exists(session_alive))
        .filter(Q(ended_at__isnull=True) | Q(ended_at__lt=now - timedelta(seconds=settings.SESSION_COOKIE_AGE)))
        .delete()[0]
    )
    setups = totp_services.totp_setups_expired_delete(now=now)
    sent_mail = MessageLog.objects.purge_old_entries(SENT_MAIL_KEPT.days)
    return {
        "expired sessions": expired_sessions,
        "throttle rows": throttles,
        "signed-in browser rows": browsers,
        "unfinished 2FA set-ups": setups,
        "sent e-mail log entries": sent_mail,
    }


def mail_failed_requeue() -> int:
    """Put the e-mails whose send failed (the mail server was down) back in the queue, each at most
    MAILER_EMAIL_MAX_RETRIES times: runmailer sends only what is not deferred. Returns how many."""
    return Message.objects.retry_deferred()
