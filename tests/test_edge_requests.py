"""Requests no form offers but anyone can send: out-of-range dates, deep JSON, odd cookies, a
passkey answer after the sign-in timed out. Each gets a clear answer, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from clinic_auth.twofactor.models import AuditEvent
from tests.conftest import Browser

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(clinic_admin, enrol):
    c = Browser()
    enrol(clinic_admin, http_client=c)
    return c


@pytest.mark.parametrize(
    "params",
    [
        {"date_to": "9999-12-31"},
        {"date_from": "9999-12-31"},
        {"date_from": "0001-01-01"},
        {"date_from": "0001-01-01", "date_to": "9999-12-31"},
        {"date_to": "1899-12-31"},
    ],
)
@pytest.mark.parametrize("page", ["clinic_audit_log", "clinic_audit_log_csv"])
def test_audit_log_dates_out_of_range_are_a_form_error_not_a_500(admin_client, clinic, page, params):
    response = admin_client.get(reverse(page, args=[clinic.pk]), params)
    assert response.status_code == 200
    if page == "clinic_audit_log":
        body = response.content.decode()
        assert "Ensure this value is" in body


def test_audit_log_dates_in_range_still_filter(admin_client, clinic):
    response = admin_client.get(reverse("clinic_audit_log", args=[clinic.pk]), {"date_from": "1900-01-01", "date_to": "9998-12-31"})
    assert response.status_code == 200
    assert AuditEvent.Action.DEVICE_CONFIRMED.label in response.content.decode()


REGISTRATION = ["otp_webauthn:credential-registration-begin", "otp_webauthn:credential-registration-complete"]
AUTHENTICATION = ["otp_webauthn:credential-authentication-begin", "otp_webauthn:credential-authentication-complete"]
UNPARSEABLE = {
    "nested 2,000 deep": "[" * 2000 + "]" * 2000,
    "nested objects": '{"a":' * 2000 + "1" + "}" * 2000,
    "not UTF-8": b"\xff\xfe{",
    "cut short": '{"id": "',
}
WRONG_SHAPE = {
    "a list": "[]",
    "a string": '"x"',
    "wrong types": '{"id": 5, "rawId": [], "response": "x", "type": null}',
}


@pytest.fixture
def passkey_clients(staff, login):
    """Each endpoint with the session it serves: registration for a signed-in user, authentication
    at the code challenge (password only)."""
    from tests.softkey import SoftKey
    from tests.test_passkeys import add_key

    signed_in = Browser()
    signed_in.force_login(staff)
    assert add_key(signed_in, SoftKey()).status_code == 200
    at_challenge = Browser()
    login(staff, http_client=at_challenge)
    return [(name, signed_in) for name in REGISTRATION] + [(name, at_challenge) for name in AUTHENTICATION]


def test_malformed_passkey_bodies_are_the_librarys_400(passkey_clients):
    for name, c in passkey_clients:
        bodies = {**UNPARSEABLE, **(WRONG_SHAPE if name.endswith("-complete") else {})}
        for label, body in bodies.items():
            if name.endswith("-complete"):
                begin = name.replace("-complete", "-begin")
                assert c.post(reverse(begin), data="{}", content_type="application/json").status_code == 200
            response = c.post(reverse(name), data=body, content_type="application/json")
            answer = (name, label, response.status_code, response.content[:200])
            assert set(response.json()) == {"detail", "code"}, answer  # the library's error shape
            if label in UNPARSEABLE:
                assert response.status_code == 400 and response.json()["code"] == "malformed_request", answer
            else:  # the library's own verdict on a body it could parse
                assert response.status_code in (400, 422), answer


def test_a_big_passkey_body_is_refused_unread(passkey_clients):
    for name, c in passkey_clients:
        response = c.post(reverse(name), data='{"x": "' + "a" * 100_000 + '"}', content_type="application/json")
        assert response.status_code == 413, (name, response.status_code)
        assert response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "cookie",
    ["\x00", "abc\x00def" * 4, "a" * 31, "a" * 33, "A" * 32, "a" * 1000, "../../etc/passwd", "é" * 32, " " * 32],
)
@pytest.mark.parametrize("page", ["login", "home", "password_reset", "profile"])
def test_a_session_cookie_no_key_could_be_is_no_session(cookie, page, settings):
    c = Client()
    c.cookies[settings.SESSION_COOKIE_NAME] = cookie
    response = c.get(reverse(page))
    assert response.status_code in (200, 302), response.status_code
    if page in ("home", "profile"):
        assert response.url.startswith(reverse("login"))


def test_passkey_sign_in_after_the_pending_timeout_signs_out(staff, login, settings, time_machine):
    from datetime import timedelta

    from django.utils import timezone

    from tests.softkey import SoftKey
    from tests.test_passkeys import AUTH_BEGIN, AUTH_COMPLETE, add_key, post_json

    key = SoftKey()
    owner = Browser()
    owner.force_login(staff)
    assert add_key(owner, key).status_code == 200

    late_begin, late_complete = Browser(), Browser()
    login(staff, http_client=late_begin)
    login(staff, http_client=late_complete)
    begun = post_json(late_complete, AUTH_BEGIN)
    assert begun.status_code == 200
    time_machine.move_to(timezone.now() + timedelta(seconds=settings.CLINICAUTH_PENDING_LOGIN_TIMEOUT + 1), tick=False)

    refused = post_json(late_begin, AUTH_BEGIN)
    assert refused.status_code == 403 and refused.json()["code"] == "sign_in_expired"
    refused = post_json(late_complete, AUTH_COMPLETE, key.assertion(begun.json()))
    assert refused.status_code == 403 and refused.json()["code"] == "sign_in_expired"
    for c in (late_begin, late_complete):
        assert "_auth_user_id" not in c.session
        assert c.get(reverse("home")).url.startswith(reverse("login"))


def test_emailed_links_come_from_site_url_never_from_the_host_header(staff, settings, django_capture_on_commit_callbacks):
    from django.core import mail

    settings.SITE_URL = "https://clinic.example.org"
    settings.ALLOWED_HOSTS = ["*"]
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(reverse("password_reset"), {"email": staff.username}, HTTP_HOST="127.0.0.1:1")
    (message,) = mail.outbox
    assert "https://clinic.example.org/accounts/password-reset/" in message.body
    assert "127.0.0.1" not in message.body
