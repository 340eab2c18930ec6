"""The password step at / and /accounts/login/."""

import re

import pytest
from django.urls import reverse

from clinic_auth.twofactor import services
from tests.conftest import PASSWORD

GENERIC_ERROR = "The username or password is incorrect."


def error_block(response) -> str:
    """The form-wide error box of the login page, as rendered."""
    match = re.search(r'<div class="message message-error" role="alert">.*?</div>', response.content.decode(), re.S)
    assert match, response.content.decode()
    return match.group(0)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/"])
def test_login_page_has_username_password_and_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert re.search(r'<input type="password" name="password"[^>]*id="id_password"', html)
    assert re.search(r'<button type="submit"[^>]*>Log in</button>', html)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/"])
def test_correct_password_without_2fa_signs_in_and_lands_on_home(client, staff, path):
    response = client.post(path, {"username": "staff", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("home")
    assert client.session["_auth_user_id"] == str(staff.pk)
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in_and_come_back(client, staff):
    response = client.get(reverse("profile"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login") + "?next=")
    response = client.post(
        reverse("login"), {"username": "staff", "password": PASSWORD, "next": reverse("profile")}
    )
    assert response.url == reverse("profile")


@pytest.mark.django_db
def test_wrong_password_unknown_user_and_inactive_user_get_the_same_generic_error(client, user_factory):
    user_factory(username="nurse")
    user_factory(username="retired", is_active=False)
    attempts = {
        "wrong password": {"username": "nurse", "password": "not the password"},
        "unknown user": {"username": "nobody-here", "password": "not the password"},
        "inactive user": {"username": "retired", "password": PASSWORD},
    }
    blocks = {}
    for name, data in attempts.items():
        response = client.post(reverse("login"), data)
        assert response.status_code == 200, name
        assert "_auth_user_id" not in client.session, name
        blocks[name] = error_block(response)
    assert set(blocks.values()) == {
        f'<div class="message message-error" role="alert"><p>{GENERIC_ERROR}</p></div>'
    }
    # The username field carries no per-field hint either.
    assert 'id="id_username_error"' not in response.content.decode()


@pytest.mark.django_db
def test_empty_form_asks_for_both_fields_and_does_not_sign_in(client, staff):
    response = client.post(reverse("login"), {"username": "", "password": ""})
    assert response.status_code == 200
    assert response.content.decode().count("This field is required.") == 2
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
@pytest.mark.parametrize(
    "evil",
    ["//evil.com/", "https://evil.com/", "/\\evil.com", "\\\\evil.com", "javascript:alert(1)", "http:///evil.com"],
)
def test_login_next_never_leaves_the_site(client, staff, evil):
    response = client.post(reverse("login"), {"username": "staff", "password": PASSWORD, "next": evil})
    assert response.status_code == 302
    assert response.url == reverse("home")


@pytest.mark.django_db
def test_signed_in_user_opening_the_login_page_is_told_who_is_signed_in(client, staff):
    client.force_login(staff)
    for url in (reverse("login"), reverse("root")):
        response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert "You are signed in as <strong>Sam Staff</strong>." in html
        assert re.search(r'<form method="get" action="/home/">\s*<button[^>]*>Continue as Sam Staff</button>', html)
        assert re.search(r"<button[^>]*>Sign in as someone else</button>", html)


@pytest.mark.django_db
def test_logout_is_post_only_and_ends_the_session(client, staff):
    client.force_login(staff)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response.url == reverse("login")
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_logging_out_says_so_on_the_login_page(client, staff):
    client.force_login(staff)
    response = client.post(reverse("logout"), follow=True)
    assert response.redirect_chain == [(reverse("login"), 302)]
    assert "You have logged out." in response.content.decode()
    # Said once, not on every later visit.
    assert "You have logged out." not in client.get(reverse("login")).content.decode()


@pytest.mark.django_db
def test_a_session_ended_elsewhere_says_why_on_the_login_page(client, staff):
    client.force_login(staff)
    assert client.get(reverse("home")).status_code == 200
    services.user_end_sessions(user=staff)  # what an admin's 2FA reset and a password change do
    response = client.get(reverse("home"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("login"))
    html = response.content.decode()
    assert "You were signed out because your sessions were ended" in html
    assert "reset your two-factor authentication" in html
    assert "You were signed out" not in client.get(reverse("login")).content.decode()


@pytest.mark.django_db
def test_a_visitor_who_never_signed_in_gets_no_signed_out_message(client):
    assert "You were signed out" not in client.get(reverse("home"), follow=True).content.decode()


@pytest.mark.django_db
def test_login_page_says_what_to_do_about_a_forgotten_password(client):
    html = client.get(reverse("login")).content.decode()
    assert f'<a href="{reverse("password_reset")}">Forgot your password?</a>' in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    "reason, said",
    [
        ("ENDED_BY_ADMIN", "Your clinic administrator signed this browser out. Log in again."),
        ("ENDED_BY_USER", "You signed this browser out from another browser. Log in again."),
    ],
)
def test_a_browser_ended_from_elsewhere_is_told_why_once(client, staff, clinic_admin, login, reason, said):
    from users import services as user_services
    from users.models import UserSession

    login(staff)
    assert client.get(reverse("home")).status_code == 200
    user_services.user_sessions_end(user=staff, actor=clinic_admin, reason=getattr(UserSession.EndReason, reason))
    response = client.get(reverse("home"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("login"))
    assert said in response.content.decode()
    assert said not in client.get(reverse("login")).content.decode()
