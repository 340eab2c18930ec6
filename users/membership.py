"""Membership rules: invitations, password reset, deactivation and roles.

Plain functions that never see the request: the views pass the client address
(for the audit log) and the site's base URL (for links in e-mails). Each one runs
in a transaction and does every side effect itself: the audit event, and the
e-mail queued for after the commit.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from clinic_auth.mail import queue_email
from clinic_auth.passwords import hash_password
from clinic_auth.twofactor import audit
from clinic_auth.twofactor.signin_code.services import signin_code_revoke
from clinic_auth.twofactor.models import AuditEvent
from clinics.models import Clinic

from . import reset_throttle, selectors
from .models import Invitation, User, new_session_nonce
from .tokens import member_reset_tokens

INVITATION_LIFETIME = timedelta(hours=72)


class MembershipRefused(Exception):
    """A change the rules forbid; the message is shown to the admin as it is."""


def _audit(action: AuditEvent.Action, *, actor: User | None, target: User, ip: str | None, detail: str = "") -> None:
    audit.record(action, actor=actor, target=target, ip_address=ip, detail=detail)


# --- invitations ----------------------------------------------------------


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue_invitation(*, member: User, invited_by: User | None, base_url: str) -> tuple[Invitation, str]:
    """Revoke any open invitation of the member, then create and e-mail a new one: (it, its link)."""
    now = timezone.now()
    Invitation.objects.filter(user=member, accepted_at=None, revoked_at=None).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        user=member,
        token_hash=invitation_token_hash(token),
        invited_by=invited_by,
        created_at=now,
        expires_at=now + INVITATION_LIFETIME,
    )
    link = base_url + reverse("invitation_accept", args=[token])
    queue_email(
        to=member.email,
        template="users/email/invitation",
        context={
            "member": member,
            "invited_by": invited_by,
            "clinic": member.clinic,
            "link": link,
            "expires_at": invitation.expires_at,
        },
    )
    return invitation, link


@transaction.atomic
def member_invite(
    *,
    clinic: Clinic,
    invited_by: User,
    username: str,
    email: str,
    first_name: str,
    last_name: str,
    role: str,
    base_url: str,
    ip: str | None,
) -> User:
    """Create the member without a usable password and e-mail them a single-use link."""
    member, _invitation, _link = _new_invited_member(
        clinic=clinic, invited_by=invited_by, username=username, email=email,
        first_name=first_name, last_name=last_name, role=role, base_url=base_url, ip=ip,
    )
    return member


def _new_invited_member(*, clinic, invited_by, username, email, first_name, last_name, role, base_url, ip):
    """The member, without a usable password, their invitation e-mailed and audited: (member, invitation, link)."""
    member = User(clinic=clinic, username=username, email=email, first_name=first_name, last_name=last_name, role=role)
    member.set_unusable_password()
    member.save()
    invitation, link = _issue_invitation(member=member, invited_by=invited_by, base_url=base_url)
    _audit(AuditEvent.Action.INVITED, actor=invited_by, target=member, ip=ip, detail=member.get_role_display())
    return member, invitation, link


@dataclass(frozen=True)
class ClinicCreated:
    clinic: Clinic
    admin: User
    link: str  # the admin's single-use set-password link, also e-mailed to them
    expires_at: datetime


@transaction.atomic
def clinic_create(
    *,
    clinic: Clinic,
    admin_email: str,
    admin_username: str,
    admin_first_name: str = "",
    admin_last_name: str = "",
    actor: User | None,
    base_url: str,
    ip: str | None,
) -> ClinicCreated:
    """Save a new clinic and create its first clinic admin, invited like any member: all or nothing."""
    clinic.save()
    admin, invitation, link = _new_invited_member(
        clinic=clinic, invited_by=actor, username=admin_username, email=admin_email, first_name=admin_first_name,
        last_name=admin_last_name, role=User.Role.CLINIC_ADMIN, base_url=base_url, ip=ip,
    )
    return ClinicCreated(clinic=clinic, admin=admin, link=link, expires_at=invitation.expires_at)


@transaction.atomic
def invitation_resend(*, member: User, actor: User, base_url: str, ip: str | None) -> Invitation:
    """A new link (the old one stops working), for a member who has not set a password yet."""
    member = User.objects.select_for_update().get(pk=member.pk)
    if member.has_usable_password():
        raise MembershipRefused(_("%(name)s has already accepted their invitation.") % {"name": member.display_name})
    if not member.is_active:
        raise MembershipRefused(_("Reactivate %(name)s before inviting them again.") % {"name": member.display_name})
    invitation, _link = _issue_invitation(member=member, invited_by=actor, base_url=base_url)
    _audit(AuditEvent.Action.INVITATION_RESENT, actor=actor, target=member, ip=ip)
    return invitation


@transaction.atomic
def invitation_revoke(*, member: User, actor: User, ip: str | None) -> bool:
    """Stop the member's open invitation link from working; False when there was none."""
    revoked = Invitation.objects.filter(user=member, accepted_at=None, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    if revoked:
        _audit(AuditEvent.Action.INVITATION_REVOKED, actor=actor, target=member, ip=ip)
    return bool(revoked)


def usable_invitation(token: str) -> Invitation | None:
    """The invitation a link names, if it can still be used; None for a used, revoked, expired or unknown link."""
    invitation = (
        Invitation.objects.select_related("user").filter(token_hash=invitation_token_hash(token)).first()
    )
    if invitation is None or not invitation.is_usable(now=timezone.now()) or not invitation.user.is_active:
        return None
    return invitation


def invitation_accept(*, token: str, password: str, ip: str | None) -> User | None:
    """Set the invitee's first password and use up the link; None when the link no longer works.

    The invitation row is locked, so two submissions of one link cannot both succeed. The
    password is hashed before any lock is taken: hashing takes tens of milliseconds and may wait its turn (clinic_auth/passwords.py).
    """
    encoded = hash_password(password)
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .filter(token_hash=invitation_token_hash(token))
            .first()
        )
        if invitation is None or not invitation.is_usable(now=timezone.now()):
            return None
        member = User.objects.select_for_update().get(pk=invitation.user_id)
        if not member.is_active:
            return None
        member.password = encoded
        member.save(update_fields=["password"])
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        _audit(AuditEvent.Action.INVITATION_ACCEPTED, actor=member, target=member, ip=ip)
        return member


# --- forgotten password ---------------------------------------------------


def password_reset_request(*, identifier: str, base_url: str, ip: str | None) -> None:
    """E-mail a reset link to the account the username or e-mail names, within the throttles.

    Always the same work whatever the input (one lookup, the same throttle rows
    written), and nothing is returned, so the caller cannot tell whether an account
    matched. The link is Django's reset token (users/tokens.py): it stops working after
    PASSWORD_RESET_TIMEOUT, and once the password changes or the user logs in.
    """
    with transaction.atomic():
        users = selectors.password_reset_candidates(identifier)
        keys = [reset_throttle.account_key(user_pk=user.pk, identifier=identifier) for user in users] or [
            reset_throttle.account_key(user_pk=None, identifier=identifier)
        ]
        if not reset_throttle.allow_request(account_keys=keys, ip=ip):
            return
        for user in users:
            uid = urlsafe_base64_encode(force_bytes(user.pk))
            token = member_reset_tokens.make_token(user)
            link = base_url + reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
            queue_email(to=user.email, template="users/email/password_reset", context={"member": user, "link": link})
            _audit(AuditEvent.Action.PASSWORD_RESET_REQUESTED, actor=None, target=user, ip=ip)


def password_reset_complete(*, user: User, new_password: str, ip: str | None) -> User:
    """Set the new password and end every session of the user; nothing here signs anyone in.
    The password is hashed before the user row is locked (it may wait its turn: clinic_auth/passwords.py)."""
    encoded = hash_password(new_password)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.password = encoded
        user.session_nonce = new_session_nonce()
        user.save(update_fields=["password", "session_nonce"])
        # Also a used invitation: a member who never set a password has now set one.
        Invitation.objects.filter(user=user, accepted_at=None, revoked_at=None).update(revoked_at=timezone.now())
        _audit(AuditEvent.Action.PASSWORD_RESET_COMPLETED, actor=user, target=user, ip=ip)
        queue_email(to=user.email, template="users/email/password_changed", context={"member": user})
        return user


# --- leavers and roles ----------------------------------------------------


def _lock_clinic_admins(clinic_id: int) -> list[User]:
    """Lock the clinic, then its active admins, in one order: changes to who administers a clinic run one at a time."""
    Clinic.objects.select_for_update().filter(pk=clinic_id).first()
    return list(
        User.objects.select_for_update()
        .filter(clinic_id=clinic_id, role=User.Role.CLINIC_ADMIN, is_active=True)
        .order_by("pk")
    )


def _refuse_if_last_admin(member: User, active_admins: list[User]) -> None:
    """Two admins removing each other at once: whoever comes second finds the other is the last one."""
    if member.is_active and member.role == User.Role.CLINIC_ADMIN:
        if not any(admin.pk != member.pk for admin in active_admins):
            raise MembershipRefused(
                _("%(name)s is the clinic's only active clinic admin. Make someone else a clinic admin first.")
                % {"name": member.display_name}
            )


def _refuse_unless_still_admin(actor: User, active_admins: list[User]) -> None:
    """An admin removed a moment ago (by a request that committed first) cannot act any more."""
    if not any(admin.pk == actor.pk for admin in active_admins):
        raise MembershipRefused(_("Only an active clinic admin of this clinic can do this."))


@transaction.atomic
def member_deactivate(*, member: User, actor: User, ip: str | None) -> bool:
    """Switch the account off: no sign-in, every session ended, open invitations revoked.

    Devices and recovery codes stay, so reactivating brings the member back with
    their 2FA as it was. False when the member was already deactivated.
    """
    if member.pk == actor.pk:
        raise MembershipRefused(_("You cannot deactivate your own account."))
    active_admins = _lock_clinic_admins(member.clinic_id)
    member = User.objects.select_for_update().get(pk=member.pk)
    if not member.is_active:
        return False
    _refuse_if_last_admin(member, active_admins)
    _refuse_unless_still_admin(actor, active_admins)
    member.is_active = False
    member.session_nonce = new_session_nonce()
    member.save(update_fields=["is_active", "session_nonce"])
    Invitation.objects.filter(user=member, accepted_at=None, revoked_at=None).update(revoked_at=timezone.now())
    signin_code_revoke(user=member)
    _audit(AuditEvent.Action.DEACTIVATED, actor=actor, target=member, ip=ip)
    queue_email(to=member.email, template="users/email/deactivated", context={"member": member, "actor": actor})
    return True


@transaction.atomic
def member_reactivate(*, member: User, actor: User, ip: str | None) -> bool:
    """Let a deactivated member sign in again, with the password and 2FA they had."""
    active_admins = _lock_clinic_admins(member.clinic_id)
    _refuse_unless_still_admin(actor, active_admins)
    member = User.objects.select_for_update().get(pk=member.pk)
    if member.is_active:
        return False
    member.is_active = True
    member.save(update_fields=["is_active"])
    _audit(AuditEvent.Action.REACTIVATED, actor=actor, target=member, ip=ip)
    queue_email(to=member.email, template="users/email/reactivated", context={"member": member, "actor": actor})
    return True


@transaction.atomic
def member_change_role(*, member: User, actor: User, role: str, ip: str | None) -> bool:
    """Staff <-> Clinic admin; an admin never demotes themselves, and a clinic keeps an active admin."""
    if member.pk == actor.pk:
        raise MembershipRefused(_("You cannot change your own role."))
    active_admins = _lock_clinic_admins(member.clinic_id)
    member = User.objects.select_for_update().get(pk=member.pk)
    if member.role == role:
        return False
    if role != User.Role.CLINIC_ADMIN:
        _refuse_if_last_admin(member, active_admins)
    _refuse_unless_still_admin(actor, active_admins)
    old_role = member.get_role_display()
    member.role = role
    member.save(update_fields=["role"])
    detail = f"{old_role} → {member.get_role_display()}"
    _audit(AuditEvent.Action.ROLE_CHANGED, actor=actor, target=member, ip=ip, detail=detail)
    queue_email(
        to=member.email, template="users/email/role_changed", context={"member": member, "actor": actor, "old_role": old_role}
    )
    return True
