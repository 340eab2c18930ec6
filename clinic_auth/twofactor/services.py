"""What changes 2FA state beyond one method: the account's lock and stamp, sign-in, reset, and the
clinic's policy. Every write with all its side effects, and nothing that sees a request.

Each service is keyword-only and atomic, and does its own stamping (so every session's cached gate
is re-checked), audit record and e-mail (queued on commit). Each method's own writes live in its
package (totp/, recovery/, signin_code/, passkeys/); refusals are typed errors; the words for
people live in texts.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import audit, devices, policy
from .models import AdminIssuedCodeDevice, AuditEvent, RecoveryCodeDevice


def user_row_lock(*, user) -> None:
    """Serialise every 2FA change of one account (SQLite: BEGIN IMMEDIATE does it already)."""
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))


def twofa_stamp_bump(*, user) -> None:
    """Every session of the user decides its gate again at its next request."""
    get_user_model().objects.filter(pk=user.pk).update(twofa_stamp=F("twofa_stamp") + 1)
    user.refresh_from_db(fields=["twofa_stamp"])


def user_record_sign_in(*, user) -> None:
    """Stamp last_login when sign-in is complete: after the second factor, or after the password
    where none applies (Django's own receiver, which stamps it at the password step, is
    disconnected in apps.py)."""
    now = timezone.now()
    get_user_model().objects.filter(pk=user.pk).update(last_login=now)
    user.last_login = now


# --- turning 2FA off -------------------------------------------------------------------


def twofa_reset(*, user, actor, action: AuditEvent.Action, ip_address: str | None = None) -> devices.TwoFactorState:
    """Remove every authenticator of the user, confirmed or still being set up, their
    recovery codes and with them every code lockout, and end all their sessions.

    Returns what was removed; when that was nothing, nothing changes (no stamp,
    no audit, no e-mail, sessions kept).
    """
    with transaction.atomic():
        user_row_lock(user=user)
        removed = devices.twofa_state(user)
        if not removed.anything_to_reset:
            return removed
        for model in (*devices.PRIMARY_METHODS, RecoveryCodeDevice, AdminIssuedCodeDevice):
            model.objects.filter(user=user).delete()
        user.rotate_session_nonce()
        user.twofa_stamp = F("twofa_stamp") + 1
        user.save(update_fields=["session_nonce", "twofa_stamp"])
        user.refresh_from_db(fields=["session_nonce", "twofa_stamp"])
        audit.record(action, actor=actor, target=user, ip_address=ip_address, detail=removed.describe())
        if removed.enrolled:
            audit.notify(user, "email/disabled", actor=actor, action=action)
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
        audit.record(action, actor=actor, target=None, clinic=clinic, ip_address=ip_address, detail=detail)
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
            audit.notify(
                member,
                "email/setup_reminder",
                clinic=clinic,
                mandatory=clinic.mandatory_2fa,
                starts_on=enforcement.starts_on if enforcement.pending(now) else None,
            )
        audit.record(
            AuditEvent.Action.REMINDERS_SENT,
            actor=actor,
            target=None,
            clinic=clinic,
            ip_address=ip_address,
            detail=f"{len(members)} member{'s' if len(members) != 1 else ''} reminded",
        )
    return len(members)


def reauth_record_failure(*, user, ip_address: str | None, detail: str) -> None:
    """A failed "Confirm it's you" (the code throttles and lockouts apply as at sign-in)."""
    audit.record(AuditEvent.Action.REAUTH_FAILED, actor=user, target=user, ip_address=ip_address, detail=detail[:255])
