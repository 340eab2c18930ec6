"""A clinic admin invites a member; the single-use, 72-hour link leads into the normal sign-in rules."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from clinic_auth.twofactor.models import AuditEvent
from tests.conftest import Browser, PASSWORD
from users.models import Invitation, User

NEW_PASSWORD = "plum orchard lantern 42"
LINK = re.compile(r"http://testserver(/accounts/invitation/[^/\s]+/)")
INVALID = "ask your clinic administrator for a new invitation"


@pytest.fixture
def admin_client(clinic_admin, enrol) -> Client:
    c = Client()
    enrol(clinic_admin, http_client=c)
    return c


def invite(admin_client, capture, **fields) -> object:
    data = {"first_name": "Joy", "last_name": "Nurse", "email": "joy@example.com", "username": "", "role": "staff"}
    data.update(fields)
    with capture(execute=True):
        return admin_client.post(reverse("user_invite"), data)


def link_in(message) -> str:
    match = LINK.search(message.body)
    assert match, message.body
    return match.group(1)


def snapshot():
    return (
        list(User.objects.order_by("pk").values_list("pk", "password", "is_active", "last_login")),
        list(Invitation.objects.order_by("pk").values_list("pk", "accepted_at", "revoked_at")),
        AuditEvent.objects.count(),
    )


def set_password(c: Client, path: str, password: str = NEW_PASSWORD):
    return c.post(path, {"new_password1": password, "new_password2": password})


@pytest.fixture
def invited(admin_client, django_capture_on_commit_callbacks):
    response = invite(admin_client, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    member = User.objects.get(username="joy@example.com")
    (message,) = mail.outbox
    mail.outbox.clear()
    return member, link_in(message)


def test_add_user_is_for_clinic_admins_only(client, staff, clinic_admin, admin_client):
    client.force_login(staff)
    assert client.get(reverse("user_invite")).status_code == 403
    assert client.post(reverse("user_invite"), {"email": "x@example.com"}).status_code == 403
    assert not User.objects.filter(email="x@example.com").exists()
    page = admin_client.get(reverse("user_list")).content.decode()
    assert f'href="{reverse("user_invite")}">Add user</a>' in page


def test_invite_creates_the_member_without_a_password_and_emails_a_link(
    admin_client, clinic, clinic_admin, django_capture_on_commit_callbacks
):
    response = invite(admin_client, django_capture_on_commit_callbacks, role="admin")
    member = User.objects.get(username="joy@example.com")
    assert response.url == reverse("user_detail", args=[member.pk])
    assert member.clinic == clinic and member.role == User.Role.CLINIC_ADMIN
    assert member.email == "joy@example.com" and member.first_name == "Joy"
    assert not member.has_usable_password()
    (message,) = mail.outbox
    assert message.to == ["joy@example.com"]
    assert "Demo Clinic" in message.subject
    token = link_in(message).rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get(user=member)
    assert invitation.token_hash != token and token not in invitation.token_hash  # only a hash is stored
    assert invitation.expires_at - invitation.created_at == timedelta(hours=72)
    event = AuditEvent.objects.get(action=AuditEvent.Action.INVITED)
    assert (event.actor, event.target, event.clinic) == (clinic_admin, member, clinic)
    page = admin_client.get(reverse("user_detail", args=[member.pk])).content.decode()
    assert "Invitation sent " in page and ">Resend</button>" in page and ">Revoke</button>" in page


def test_chosen_username_is_kept(admin_client, django_capture_on_commit_callbacks):
    invite(admin_client, django_capture_on_commit_callbacks, username="joy.n")
    assert User.objects.get(email="joy@example.com").username == "joy.n"


@pytest.mark.parametrize(
    "fields, field, error",
    [
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"email": "USER1@example.com"}, "email", "A user of your clinic already has this email address."),
        ({"username": "STAFF"}, "username", "This username is not available. Choose another."),
        ({"username": "bad name!"}, "username", "Enter a valid username."),
        ({"first_name": ""}, "first_name", "This field is required."),
        ({"role": "operator"}, "role", "Select a valid choice."),
    ],
)
def test_bad_input_gets_field_errors_and_creates_nothing(
    admin_client, user_factory, staff, fields, field, error, django_capture_on_commit_callbacks
):
    user_factory(email="user1@example.com")
    before = User.objects.count()
    response = invite(admin_client, django_capture_on_commit_callbacks, **fields)
    assert response.status_code == 200
    assert any(e.startswith(error) for e in response.context["form"].errors[field]), response.context["form"].errors
    assert User.objects.count() == before and not mail.outbox


def test_email_taken_as_a_username_elsewhere_gets_a_free_variant(admin_client, user_factory, django_capture_on_commit_callbacks):
    user_factory(username="joy@example.com", email="other@example.com")
    response = invite(admin_client, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    member = User.objects.get(email="joy@example.com")
    assert member.username == "joy@example.com-2"
    assert "their username is joy@example.com-2" in admin_client.get(response.url).content.decode()


def test_add_user_says_nothing_about_other_clinics_accounts(admin_client, clinic_factory, user_factory, django_capture_on_commit_callbacks):
    """Another clinic's member: their address can be added here, and neither their address nor
    their username is named as existing."""
    elsewhere = clinic_factory(name="North")
    user_factory(clinic=elsewhere, username="north-staff", email="north-staff@example.com")
    typed = invite(admin_client, django_capture_on_commit_callbacks, email="n2@example.com", username="north-staff")
    errors = typed.context["form"].errors["username"]
    assert errors == ["This username is not available. Choose another."]  # the answer for any unavailable name
    same_address = invite(admin_client, django_capture_on_commit_callbacks, email="north-staff@example.com")
    assert same_address.status_code == 302
    assert User.objects.filter(email="north-staff@example.com").count() == 2


def test_set_your_password_page_shows_the_password_rules_before_typing(client, invited):
    _, path = invited
    body = client.get(path).content.decode()
    assert "<h1>Set your password</h1>" in body
    assert "at least 10 characters" in body
    assert "Your password can’t be entirely numeric." in body
    assert 'aria-describedby="password-rules"' in body


def test_accepting_signs_in_without_mandatory_2fa_and_goes_home(client, clinic, invited):
    member, path = invited
    response = set_password(client, path)
    assert response.url == reverse("home")
    assert client.get(reverse("home")).status_code == 200
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    assert Invitation.objects.get(user=member).accepted_at is not None
    assert AuditEvent.objects.filter(action=AuditEvent.Action.INVITATION_ACCEPTED, target=member).count() == 1


def test_accepting_under_mandatory_2fa_leads_straight_to_setup(client, clinic, invited):
    clinic.mandatory_2fa = True
    clinic.save()
    _, path = invited
    response = set_password(client, path)
    followed = client.get(response.url)
    assert followed.status_code == 302 and followed.url.startswith(reverse("two_factor_setup"))
    assert client.get(reverse("two_factor_setup")).status_code == 200


def test_weak_password_is_refused_and_the_link_stays_usable(client, invited):
    member, path = invited
    response = set_password(client, path, "12345")
    assert response.status_code == 200
    assert response.context["form"].errors["new_password1"] and "new_password2" not in response.context["form"].errors
    member.refresh_from_db()
    assert not member.has_usable_password()
    assert set_password(client, path).status_code == 302


def test_the_link_works_once(client, invited):
    member, path = invited
    assert set_password(client, path).status_code == 302
    other = Client()
    before = snapshot()
    for response in (other.get(path), set_password(other, path, "another fine passphrase")):
        assert response.status_code == 200 and INVALID in response.content.decode()
    assert snapshot() == before
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    assert "_auth_user_id" not in other.session


def test_the_link_expires_after_72_hours(client, invited):
    member, path = invited
    created = Invitation.objects.get(user=member).created_at
    with mock.patch("django.utils.timezone.now", return_value=created + timedelta(hours=71, minutes=59)):
        assert "Set your password" in client.get(path).content.decode()
    before = snapshot()
    with mock.patch("django.utils.timezone.now", return_value=created + timedelta(hours=72, seconds=1)):
        assert INVALID in client.get(path).content.decode()
        assert INVALID in set_password(client, path).content.decode()
    assert snapshot() == before


def test_a_tampered_link_changes_nothing(client, invited):
    _, path = invited
    before = snapshot()
    token = path.rstrip("/").rsplit("/", 1)[1]
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), token[:20], "x"):
        response = set_password(client, reverse("invitation_accept", args=[bad]))
        assert INVALID in response.content.decode()
    assert snapshot() == before


def test_revoke_kills_the_link(admin_client, client, clinic_admin, invited, django_capture_on_commit_callbacks):
    member, path = invited
    response = admin_client.post(reverse("user_invitation_revoke", args=[member.pk]))
    assert response.status_code == 302
    before = snapshot()
    assert INVALID in set_password(client, path).content.decode()
    assert snapshot() == before
    event = AuditEvent.objects.get(action=AuditEvent.Action.INVITATION_REVOKED)
    assert (event.actor, event.target) == (clinic_admin, member)
    page = admin_client.get(reverse("user_detail", args=[member.pk])).content.decode()
    assert "Invitation revoked" in page and ">Revoke</button>" not in page


def test_resend_sends_a_new_link_and_the_old_one_dies(admin_client, client, invited, django_capture_on_commit_callbacks):
    member, old_path = invited
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(reverse("user_invitation_resend", args=[member.pk])).status_code == 302
    (message,) = mail.outbox
    new_path = link_in(message)
    assert new_path != old_path
    assert INVALID in client.get(old_path).content.decode()
    assert set_password(client, new_path).status_code == 302
    assert AuditEvent.objects.filter(action=AuditEvent.Action.INVITATION_RESENT, target=member).count() == 1


def test_resend_and_revoke_are_refused_for_other_clinics_and_staff(
    client, staff, invited, clinic_factory, user_factory
):
    member, path = invited
    other_admin = user_factory(clinic=clinic_factory(), role=User.Role.CLINIC_ADMIN)
    other = Browser()
    other.force_login(other_admin)
    assert other.post(reverse("user_invitation_revoke", args=[member.pk])).status_code == 404
    client.force_login(staff)
    assert client.post(reverse("user_invitation_revoke", args=[member.pk])).status_code == 403
    assert Invitation.objects.get(user=member).revoked_at is None


def test_an_invitee_cannot_log_in_before_accepting(client, invited):
    member, _ = invited
    for guess in ("", "!", member.password):  # an unusable password matches nothing, not even its own hash
        response = client.post(reverse("login"), {"username": member.username, "password": guess})
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session


def test_accepted_member_logs_in_with_the_new_password(client, invited):
    member, path = invited
    set_password(client, path)
    client.logout()
    fresh = Client()
    response = fresh.post(reverse("login"), {"username": member.username, "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("home")
    assert Client().post(reverse("login"), {"username": member.username, "password": PASSWORD}).status_code == 200


def test_member_page_reads_the_invitation_with_the_member(admin_client, invited, staff):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    member, _ = invited
    admin_client.get(reverse("user_detail", args=[staff.pk]))  # the session's last-seen write happens here
    counts = {}
    for who in (staff, member):
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(reverse("user_detail", args=[who.pk]))
        assert response.status_code == 200
        counts[who.username] = len(queries)
    assert "Invitation sent " in response.content.decode()
    # No query more for the invitation (one fewer, in fact: an invited member has no browsers to list).
    assert counts[member.username] <= counts["staff"], counts


def test_a_username_taken_after_the_forms_check_is_a_field_error(admin_client, user_factory, monkeypatch):
    """Two admins adding the same username at once: the database's unique index decides, not a 500."""
    from users import forms

    monkeypatch.setattr(forms.InviteMemberForm, "clean", lambda self: {**self.cleaned_data, "username": "taken"})
    user_factory(username="taken")
    before = User.objects.count()
    response = admin_client.post(
        reverse("user_invite"),
        {"first_name": "Joy", "last_name": "Nurse", "email": "joy@example.com", "username": "taken", "role": "staff"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["username"] == ["This username is not available. Choose another."]
    assert User.objects.count() == before and not Invitation.objects.exists()
