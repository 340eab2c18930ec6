"""Leavers are switched off at once, roles change, and a clinic always keeps an active admin."""

import html
import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from clinic_auth.twofactor import devices
from clinic_auth.twofactor.models import AuditEvent
from clinic_auth.twofactor.signin_code import services as signin_code_services
from tests.conftest import Browser, PASSWORD, next_code
from users import membership
from users.forms import LoginForm
from users.models import Invitation, User


@pytest.fixture
def admin_client(clinic_admin, enrol) -> Client:
    c = Client()
    enrol(clinic_admin, http_client=c)
    return c


@pytest.fixture
def member(user_factory) -> User:
    return user_factory(username="nurse.joy", first_name="Joy", last_name="Nurse", email="joy@example.com")


@pytest.fixture
def enrolled_member(member, enrol):
    """The member with 2FA, and two of their own sessions past the second factor."""
    first, second = Client(), Client()
    device, _ = enrol(member, http_client=first)
    second.post(reverse("login"), {"username": member.username, "password": PASSWORD})
    assert second.post(reverse("two_factor_challenge"), {"code": next_code(device)}).status_code == 302
    for c in (first, second):
        assert c.get(reverse("home")).status_code == 200
    return device, [first, second]


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def deactivate(admin_client, member, capture):
    with capture(execute=True):
        return admin_client.post(reverse("user_deactivate", args=[member.pk]))


def test_deactivate_asks_first_and_get_changes_nothing(admin_client, member):
    response = admin_client.get(reverse("user_deactivate", args=[member.pk]))
    assert response.status_code == 200
    assert "Deactivate Joy Nurse?" in response.content.decode()
    member.refresh_from_db()
    assert member.is_active


def test_deactivation_ends_every_session_blocks_login_and_keeps_2fa(
    admin_client, member, enrolled_member, clinic_admin, clinic, django_capture_on_commit_callbacks
):
    device, sessions = enrolled_member
    response = deactivate(admin_client, member, django_capture_on_commit_callbacks)
    assert response.url == reverse("user_detail", args=[member.pk])
    for c in sessions:
        response = c.get(reverse("home"))
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    # The login form answers as for a wrong password, and the right password gets no further.
    right = Client().post(reverse("login"), {"username": member.username, "password": PASSWORD})
    wrong = Client().post(reverse("login"), {"username": member.username, "password": "not it at all"})
    for response in (right, wrong):
        assert response.status_code == 200
        assert response.context["form"].errors["__all__"] == [LoginForm.error_messages["invalid_login"]]
    assert devices.is_enrolled(member)  # 2FA kept for a reactivation
    event = AuditEvent.objects.get(action=AuditEvent.Action.DEACTIVATED)
    assert (event.actor, event.target, event.clinic) == (clinic_admin, member, clinic)
    (message,) = mail.outbox
    assert message.to == ["joy@example.com"] and "deactivated" in message.subject


def test_reactivate_brings_them_back_with_their_2fa(
    admin_client, member, enrolled_member, django_capture_on_commit_callbacks
):
    device, old_sessions = enrolled_member
    deactivate(admin_client, member, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("user_reactivate", args=[member.pk]))
    assert response.status_code == 302
    for old in old_sessions:  # the sessions ended at deactivation stay ended
        assert old.get(reverse("home")).url.startswith(reverse("login"))
    c = Client()
    assert c.post(reverse("login"), {"username": member.username, "password": PASSWORD}).status_code == 302
    assert c.get(reverse("home")).url.startswith(reverse("two_factor_challenge"))  # still asked for the code
    assert c.post(reverse("two_factor_challenge"), {"code": next_code(device)}).status_code == 302
    assert c.get(reverse("home")).status_code == 200
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REACTIVATED, target=member).count() == 1
    (message,) = mail.outbox
    assert "reactivated" in message.subject


def test_deactivation_revokes_open_invitations(admin_client, member, clinic_admin, django_capture_on_commit_callbacks):
    member.set_unusable_password()
    member.save()
    with django_capture_on_commit_callbacks(execute=True):
        membership.invitation_resend(member=member, actor=clinic_admin, base_url="http://testserver", ip=None)
    path = re.search(r"http://testserver(\S+)", mail.outbox[0].body).group(1)
    deactivate(admin_client, member, django_capture_on_commit_callbacks)
    assert Invitation.objects.get(user=member).revoked_at is not None
    assert "ask your clinic administrator" in Client().get(path).content.decode()
    admin_client.post(reverse("user_reactivate", args=[member.pk]))
    assert "ask your clinic administrator" in Client().get(path).content.decode()


def test_deactivated_member_stays_in_the_list_with_a_filter(admin_client, member, staff, django_capture_on_commit_callbacks):
    deactivate(admin_client, member, django_capture_on_commit_callbacks)

    def names(status):
        page = admin_client.get(reverse("user_list"), {"status": status})
        return {m.username for m in page.context["page"].object_list}

    assert {"nurse.joy", "staff", "admin"} <= names("")
    assert names("deactivated") == {"nurse.joy"}
    assert "nurse.joy" not in names("active") and "staff" in names("active")
    page = admin_client.get(reverse("user_list"), {"status": "deactivated"}).content.decode()
    assert "Deactivated</span>" in page and 'value="deactivated" selected' in page


def test_an_admin_cannot_deactivate_or_demote_themselves(admin_client, clinic_admin, user_factory):
    user_factory(role=User.Role.CLINIC_ADMIN)  # another admin: the refusal is about "self", not "last"
    response = admin_client.post(reverse("user_deactivate", args=[clinic_admin.pk]), follow=True)
    assert "You cannot deactivate your own account." in messages_of(response)
    response = admin_client.post(reverse("user_change_role", args=[clinic_admin.pk]), {"role": "staff"}, follow=True)
    assert "You cannot change your own role." in messages_of(response)
    clinic_admin.refresh_from_db()
    assert clinic_admin.is_active and clinic_admin.role == User.Role.CLINIC_ADMIN
    assert not AuditEvent.objects.filter(action__in=["deactivated", "role_changed"]).exists()
    page = admin_client.get(reverse("user_detail", args=[clinic_admin.pk])).content.decode()
    assert ">Deactivate</button>" not in page and ">Change role</button>" not in page


def test_change_role_both_ways(admin_client, member, clinic_admin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("user_change_role", args=[member.pk]), {"role": "admin"}, follow=True)
    assert "Joy Nurse is now Clinic admin." in messages_of(response)
    member.refresh_from_db()
    assert member.is_clinic_admin
    promoted = Browser()
    promoted.force_login(member)
    assert promoted.get(reverse("user_list")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("user_change_role", args=[member.pk]), {"role": "staff"})
    member.refresh_from_db()
    assert member.role == User.Role.STAFF
    assert promoted.get(reverse("user_list")).status_code == 403
    details = list(AuditEvent.objects.filter(action="role_changed").order_by("id").values_list("detail", flat=True))
    assert details == ["Staff → Clinic admin", "Clinic admin → Staff"]
    assert [m.to for m in mail.outbox] == [["joy@example.com"]] * 2 and "role" in mail.outbox[0].subject


def test_a_clinic_always_keeps_an_active_admin(clinic, clinic_admin, user_factory):
    """What two admins removing each other at once comes down to: the second request, which
    passed its page's admin check before the first committed, finds the other is the last admin."""
    second = user_factory(role=User.Role.CLINIC_ADMIN)
    stale_second = User.objects.get(pk=second.pk)  # as loaded by its request before the first one committed
    membership.member_deactivate(member=second, actor=clinic_admin, ip=None)
    with pytest.raises(membership.MembershipRefused, match="only active clinic admin"):
        membership.member_deactivate(member=clinic_admin, actor=stale_second, ip=None)
    with pytest.raises(membership.MembershipRefused, match="only active clinic admin"):
        membership.member_change_role(member=clinic_admin, actor=stale_second, role=User.Role.STAFF, ip=None)
    clinic_admin.refresh_from_db()
    assert clinic_admin.is_active and clinic_admin.is_clinic_admin
    # With a second active admin, the demotion is allowed.
    third = user_factory(role=User.Role.STAFF)
    membership.member_change_role(member=third, actor=clinic_admin, role=User.Role.CLINIC_ADMIN, ip=None)
    membership.member_change_role(member=clinic_admin, actor=third, role=User.Role.STAFF, ip=None)
    clinic_admin.refresh_from_db()
    assert clinic_admin.role == User.Role.STAFF


def test_an_admin_removed_a_moment_ago_cannot_act(clinic, clinic_admin, user_factory):
    second, third = user_factory(role=User.Role.CLINIC_ADMIN), user_factory(role=User.Role.CLINIC_ADMIN)
    stale_second = User.objects.get(pk=second.pk)
    membership.member_change_role(member=second, actor=clinic_admin, role=User.Role.STAFF, ip=None)
    for change in (
        lambda: membership.member_deactivate(member=third, actor=stale_second, ip=None),
        lambda: membership.member_change_role(member=third, actor=stale_second, role=User.Role.STAFF, ip=None),
        lambda: membership.member_reactivate(member=third, actor=stale_second, ip=None),
    ):
        with pytest.raises(membership.MembershipRefused, match="Only an active clinic admin"):
            change()
    third.refresh_from_db()
    assert third.is_active and third.is_clinic_admin


def test_the_last_admin_rule_over_http(admin_client, clinic_admin, user_factory, enrol):
    other_admin = user_factory(role=User.Role.CLINIC_ADMIN, first_name="Olu", last_name="Other")
    other_client = Client()
    enrol(other_admin, http_client=other_client)
    assert admin_client.post(reverse("user_deactivate", args=[other_admin.pk])).status_code == 302
    other_admin.refresh_from_db()
    assert not other_admin.is_active
    # Reactivated and demoted, the first admin is again the only one.
    admin_client.post(reverse("user_reactivate", args=[other_admin.pk]))
    admin_client.post(reverse("user_change_role", args=[other_admin.pk]), {"role": "staff"})
    other_admin.refresh_from_db()
    assert other_admin.role == User.Role.STAFF and other_admin.is_active


def test_membership_pages_are_for_the_clinics_admins_only(client, staff, member, clinic_factory, user_factory):
    client.force_login(staff)
    for name in ("user_deactivate", "user_reactivate", "user_change_role", "user_invitation_resend"):
        assert client.post(reverse(name, args=[member.pk]), {"role": "admin"}).status_code == 403
    other = Browser()
    other.force_login(user_factory(clinic=clinic_factory(), role=User.Role.CLINIC_ADMIN))
    for name in ("user_deactivate", "user_reactivate", "user_change_role", "user_invitation_resend"):
        assert other.post(reverse(name, args=[member.pk]), {"role": "admin"}).status_code == 404
    member.refresh_from_db()
    assert member.is_active and member.role == User.Role.STAFF


def test_bad_role_changes_nothing(admin_client, member):
    response = admin_client.post(reverse("user_change_role", args=[member.pk]), {"role": "superuser"}, follow=True)
    assert "Choose Staff or Clinic admin." in messages_of(response)
    member.refresh_from_db()
    assert member.role == User.Role.STAFF


def test_member_page_shows_the_account_and_role_sections(admin_client, member, django_capture_on_commit_callbacks):
    page = html.unescape(admin_client.get(reverse("user_detail", args=[member.pk])).content.decode())
    assert ">Deactivate</button>" in page and ">Change role</button>" in page and "Active</span>" in page
    deactivate(admin_client, member, django_capture_on_commit_callbacks)
    page = html.unescape(admin_client.get(reverse("user_detail", args=[member.pk])).content.decode())
    assert ">Reactivate</button>" in page and "Deactivated</span>" in page


def test_member_page_title_is_just_the_name(admin_client, member):
    page = admin_client.get(reverse("user_detail", args=[member.pk])).content.decode()
    assert re.search(r"<title>(.*?)</title>", page, re.S).group(1) == "Joy Nurse · ClinicAuth"
    assert page.count('id="account-heading"') == 1


def test_deactivation_kills_an_unused_one_time_sign_in_code(
    admin_client, member, enrolled_member, clinic_admin, django_capture_on_commit_callbacks
):
    from clinic_auth.twofactor.models import AdminIssuedCodeDevice

    code, _ = signin_code_services.signin_code_issue(user=member, actor=clinic_admin)
    assert AdminIssuedCodeDevice.objects.filter(user=member).exists()
    deactivate(admin_client, member, django_capture_on_commit_callbacks)
    assert not AdminIssuedCodeDevice.objects.filter(user=member).exists()
    admin_client.post(reverse("user_reactivate", args=[member.pk]))
    # Back with their 2FA as it was, but the code issued before is gone for good.
    assert not AdminIssuedCodeDevice.objects.filter(user=member).exists()
