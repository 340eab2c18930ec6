"""What 2FA tells people: user-facing messages, the audit trail and security emails."""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone

from .models import AuditEvent

logger = logging.getLogger(__name__)

MESSAGES = {
    "code_invalid": "That code is not valid. Check your authenticator app and try again.",
    "code_replayed": "That code has already been used. Wait for the next code in your app.",
    "code_locked": "Too many incorrect codes. Try again in {seconds} {unit}.",
    "code_locked_minutes": "Too many incorrect codes. Code entry is locked for {minutes} minutes.",
    "code_hard_locked": "Too many incorrect codes. Code entry is locked: ask your clinic administrator to reset your two-factor authentication.",
    "setup_code_invalid": "That code did not match. Scan the QR code again or check the time on your phone, then enter the new code.",
    "setup_expired": "Your set-up expired, so this page now shows a new QR code. Remove the old ClinicAuth entry from your authenticator app, then scan the new code.",
    "setup_superseded": "Two-factor authentication was just set up for your account in another window, so this set-up was cancelled. If that wasn't you, ask your clinic administrator to reset your two-factor authentication.",
    "codes_already_shown": "These recovery codes were already shown once and cannot be shown again.",
    "login_expired": "Your sign-in took too long. Log in again.",
    "enabled": "2FA is now active: two-factor authentication is enabled for your account.",
    "already_enabled": "Two-factor authentication is already active on your account.",
    "disabled_self": "Two-factor authentication is now off for your account.",
    "disable_refused_mandatory": "Your clinic requires two-factor authentication. Only a clinic administrator can reset it.",
    "recovery_regenerated": "New recovery codes created. Your old codes no longer work.",
    "clinic_saved": "Clinic settings saved.",
    "user_2fa_disabled": "Two-factor authentication is now disabled for {name}. They have been signed out everywhere.",
    "user_2fa_disabled_mandatory": "{name} will be asked to set up two-factor authentication again at their next login.",
    "user_has_no_2fa": "{name} does not have two-factor authentication set up, so there is nothing to disable.",
    "disable_own_refused": "You cannot disable your own two-factor authentication here. Use My Profile instead.",
    "session_expired": "Your session has ended. Log in again.",
}


def message(key: str, **kwargs) -> str:
    return MESSAGES[key].format(**kwargs)


def client_ip(request: HttpRequest | None) -> str | None:
    """The client address; X-Forwarded-For only counts behind configured trusted proxies."""
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR", "")
    proxies = settings.CLINICAUTH_TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            address = hops[-proxies]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def record(
    action: AuditEvent.Action,
    *,
    actor,
    target,
    request: HttpRequest | None,
    ip_address: str | None = None,
    clinic=None,
    detail: str = "",
) -> AuditEvent:
    """Write one audit row; the address comes from the request, or from services that never see one."""
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
        ip_address=client_ip(request) if request is not None else ip_address,
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
