"""Writes for accounts and their signed-in browsers; none of them sees the request."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone

from clinic_auth.mail import queue_email
from clinic_auth.twofactor import audit, devices
from clinic_auth.twofactor.models import AuditEvent

from .models import User, UserSession


class SessionNotFound(Exception):
    """No such signed-in browser of this user (or it has ended already)."""


def twofa_enrolled_refresh(*, user_ids: Iterable[int]) -> None:
    """Set User.twofa_enrolled from the authenticators the users have now.

    The user rows are locked first and the flag is worked out by the next statement, so it
    sees every change committed before the lock was granted: two transactions that add
    and remove the same user's authenticators at once cannot leave a stale flag.
    """
    ids = sorted({pk for pk in user_ids if pk is not None})
    if not ids:
        return
    with transaction.atomic():
        list(User.objects.select_for_update().filter(pk__in=ids).values_list("pk"))
        User.objects.filter(pk__in=ids).update(
            twofa_enrolled=ExpressionWrapper(devices.enrolled_q(), output_field=BooleanField())
        )


def user_session_start(*, user: User, session_key: str, ip_address: str | None, user_agent: str) -> UserSession:
    return UserSession.objects.update_or_create(
        session_key=session_key,
        defaults={
            "user": user, "ip_address": ip_address, "user_agent": user_agent[:512],
            "completed_at": None, "ended_at": None, "end_reason": "",
        },
    )[0]


def user_session_mark_completed(*, session_key: str) -> None:
    """The browser's sign-in completed: from now on it is listed as signed in."""
    UserSession.objects.filter(session_key=session_key, ended_at=None).update(completed_at=timezone.now())


def user_session_mark_ended(*, session_key: str, reason: UserSession.EndReason) -> None:
    """The browser signed out (its session row is flushed by Django itself)."""
    UserSession.objects.filter(session_key=session_key, ended_at=None).update(ended_at=timezone.now(), end_reason=reason)


def user_sessions_end(
    *,
    user: User,
    actor: User,
    reason: UserSession.EndReason,
    session_ids: list[int] | None = None,
    keep_session_key: str | None = None,
    ip_address: str | None = None,
) -> int:
    """End some (session_ids) or all of the user's signed-in browsers, but never `keep_session_key`.

    Ending deletes the session's own row, so its next request is signed out. Returns
    how many ended. An admin ending a member's sessions is audited and e-mailed.
    """
    with transaction.atomic():
        rows = UserSession.objects.select_for_update().filter(user=user, ended_at=None)
        if session_ids is not None:
            rows = rows.filter(pk__in=session_ids)
        if keep_session_key:
            rows = rows.exclude(session_key=keep_session_key)
        keys = list(rows.values_list("session_key", flat=True))
        if session_ids is not None and len(keys) != len(set(session_ids)):
            raise SessionNotFound()
        live = Session.objects.filter(session_key__in=keys).delete()[0]
        rows.update(ended_at=timezone.now(), end_reason=reason)
        if reason == UserSession.EndReason.ENDED_BY_ADMIN and keys:
            audit.record(
                AuditEvent.Action.SESSIONS_ENDED_BY_ADMIN,
                actor=actor,
                target=user,
                ip_address=ip_address,
                detail=f"{len(keys)} session{'s' if len(keys) != 1 else ''}",
            )
            queue_email(to=user.email, template="users/email/sessions_ended", context={"user": user, "actor": actor, "count": len(keys)})
    return live


def user_signed_out_for_switch(*, user: User, session_key: str | None, ip_address: str | None) -> None:
    """Someone else is signing in on this browser: the person still signed in is signed out, on the record."""
    with transaction.atomic():
        if session_key:
            user_session_mark_ended(session_key=session_key, reason=UserSession.EndReason.SWITCHED_USER)
        audit.record(AuditEvent.Action.SIGNED_OUT_FOR_SWITCH, actor=user, target=user, ip_address=ip_address)
