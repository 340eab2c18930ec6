"""An admin disables a user's 2FA from the user view page."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from clinic_auth.twofactor import devices
from clinic_auth.twofactor.models import AuditEvent
from tests.conftest import Browser, proved_just_now
from users.models import User

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def disable_url(user: User) -> str:
    return reverse("user_disable_2fa", args=[user.pk])


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def has_no_2fa_left(user: User) -> bool:
    return (
        not devices.is_enrolled(user)
        and devices.recovery_device(user) is None
        and devices.recovery_codes_left(user) == 0
    )


@pytest.fixture
def admin_client(clinic_admin, enrol) -> Client:
    """A verified admin, so the pages stay reachable when Mandatory 2FA is on."""
    c = Client()
    enrol(clinic_admin, http_client=c)
    return c


@pytest.fixture
def member(user_factory) -> User:
    return user_factory(username="nurse.joy", first_name="Joy", last_name="Nurse")


@pytest.fixture
def member_client(member, enrol) -> Client:
    """The member, enrolled and signed in past the second factor."""
    c = Client()
    enrol(member, http_client=c)
    assert c.get(reverse("home")).status_code == 200
    return c


def test_get_shows_a_confirm_page_and_never_disables(admin_client, member, member_client):
    for _ in range(2):
        response = admin_client.get(disable_url(member))

        assert response.status_code == 200
        body = response.content.decode()
        assert f'<form method="post" action="{disable_url(member)}">' in body
        assert "csrfmiddlewaretoken" in body
        assert "Disable Two-Factor Authentication</button>" in body
        assert f'href="{reverse("user_detail", args=[member.pk])}">Cancel</a>' in body
    assert devices.is_enrolled(member)
    assert devices.recovery_codes_left(member) == 10
    assert member_client.get(reverse("home")).status_code == 200
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DISABLED_BY_ADMIN).exists()


def test_post_without_or_with_a_wrong_csrf_token_is_refused(clinic_admin, member, member_client):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(clinic_admin)
    proved_just_now(strict)
    confirm = strict.get(disable_url(member))  # sets the CSRF cookie
    assert confirm.status_code == 200

    assert strict.post(disable_url(member)).status_code == 403
    assert strict.post(disable_url(member), {"csrfmiddlewaretoken": "x" * 64}).status_code == 403
    assert devices.is_enrolled(member)

    token = CSRF_INPUT.search(confirm.content.decode()).group(1)
    response = strict.post(disable_url(member), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert has_no_2fa_left(member)


def test_post_disables_ends_the_users_sessions_audits_and_confirms(
    admin_client, clinic_admin, member, member_client, clinic
):
    second_session = Browser()
    second_session.force_login(member)

    response = admin_client.post(disable_url(member), follow=True)

    assert response.redirect_chain == [(reverse("user_detail", args=[member.pk]), 302)]
    assert messages_of(response) == [
        "Two-factor authentication is now disabled for Joy Nurse. They have been signed out everywhere."
    ]
    assert "Not set up" in response.content.decode()
    assert has_no_2fa_left(member)
    for session in (member_client, second_session):
        ended = session.get(reverse("home"))
        assert ended.status_code == 302 and ended.url.startswith(reverse("login"))
    # The admin's own session carries on.
    assert admin_client.get(reverse("user_list")).status_code == 200
    (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.DISABLED_BY_ADMIN)
    assert (event.actor, event.target, event.clinic, event.ip_address) == (clinic_admin, member, clinic, "127.0.0.1")


def test_after_the_reset_the_user_signs_in_with_the_password_alone(admin_client, member, member_client, login):
    admin_client.post(disable_url(member))

    response = login(member, http_client=Client(), follow=True)

    assert response.redirect_chain[-1][0] == reverse("home")
    assert response.status_code == 200


def test_with_mandatory_2fa_the_user_is_told_and_must_set_up_again(
    admin_client, member, member_client, clinic, login
):
    clinic.mandatory_2fa = True
    clinic.save()
    again = "they will be asked to set up 2FA again at their next login"

    assert again in admin_client.get(reverse("user_detail", args=[member.pk])).content.decode()
    assert again in admin_client.get(disable_url(member)).content.decode()
    response = admin_client.post(disable_url(member), follow=True)

    assert messages_of(response)[-1] == (
        "Joy Nurse will be asked to set up two-factor authentication again at their next login."
    )
    assert "Required but not set up" in response.content.decode()
    response = login(member, http_client=(fresh := Client()), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("two_factor_setup"))
    assert "Set up Two-Factor Authentication" in response.content.decode()
    # And nothing else is reachable until they have.
    assert fresh.get(reverse("profile")).url.startswith(reverse("two_factor_setup"))


def test_without_mandatory_2fa_there_is_no_set_up_again_notice(admin_client, member, member_client):
    page = admin_client.get(disable_url(member)).content.decode()
    response = admin_client.post(disable_url(member), follow=True)

    assert "set up 2FA again" not in page
    assert len(messages_of(response)) == 1


def test_disabling_a_user_without_2fa_says_so_and_changes_nothing(admin_client, member, clinic):
    bystander = Browser()
    bystander.force_login(member)
    expected = "Joy Nurse does not have two-factor authentication set up, so there is nothing to disable."

    shown = admin_client.get(disable_url(member), follow=True)
    posted = admin_client.post(disable_url(member), follow=True)

    for response in (shown, posted):
        assert response.redirect_chain == [(reverse("user_detail", args=[member.pk]), 302)]
        assert messages_of(response) == [expected]
    assert bystander.get(reverse("home")).status_code == 200
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DISABLED_BY_ADMIN).exists()


def test_disabling_twice_is_harmless(admin_client, member, member_client):
    admin_client.post(disable_url(member), follow=True)

    response = admin_client.post(disable_url(member), follow=True)

    assert messages_of(response) == [
        "Joy Nurse does not have two-factor authentication set up, so there is nothing to disable."
    ]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.DISABLED_BY_ADMIN).count() == 1


def test_an_admin_cannot_disable_their_own_2fa_here(admin_client, clinic_admin):
    refused = "You cannot disable your own two-factor authentication here. Use My Profile instead."

    for response in (
        admin_client.get(disable_url(clinic_admin), follow=True),
        admin_client.post(disable_url(clinic_admin), follow=True),
    ):
        assert response.redirect_chain == [(reverse("user_detail", args=[clinic_admin.pk]), 302)]
        assert messages_of(response) == [refused]
    assert devices.is_enrolled(clinic_admin)
    assert admin_client.get(reverse("user_list")).status_code == 200


def test_another_admin_of_the_same_clinic_can_reset_a_locked_out_admin(
    admin_client, clinic_admin, user_factory, enrol
):
    """An admin who lost phone and codes is reset by a colleague."""
    colleague = user_factory(role=User.Role.CLINIC_ADMIN, username="second.admin")
    enrol(colleague, http_client=Client())

    response = admin_client.post(disable_url(colleague))

    assert response.status_code == 302
    assert has_no_2fa_left(colleague)


def test_staff_cannot_disable_anyone(member, member_client, user_factory):
    staff_client = Browser()
    staff_client.force_login(user_factory(username="other.staff"))

    assert staff_client.get(disable_url(member)).status_code == 403
    assert staff_client.post(disable_url(member)).status_code == 403
    assert devices.is_enrolled(member)
    assert member_client.get(reverse("home")).status_code == 200


def test_admin_of_another_clinic_cannot_disable(member, member_client, clinic_factory, user_factory):
    outsider = user_factory(clinic=clinic_factory(), role=User.Role.CLINIC_ADMIN, username="outsider")
    outsider_client = Browser()
    outsider_client.force_login(outsider)

    assert outsider_client.get(disable_url(member)).status_code == 404
    assert outsider_client.post(disable_url(member)).status_code == 404
    assert devices.is_enrolled(member)
    assert member_client.get(reverse("home")).status_code == 200
