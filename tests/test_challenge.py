"""The code challenge after the password step."""

import re
from urllib.parse import quote

import pytest
from django_otp import DEVICE_ID_SESSION_KEY
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from clinic_auth.twofactor import devices
from tests.conftest import PASSWORD, next_code, totp_for

CHALLENGE = reverse("two_factor_challenge")
WRONG_CODE_ERROR = "That code is not valid. Check your authenticator app and try again."


def wrong_code_for(device) -> str:
    """A well-formed code that is none of the codes the device accepts right now."""
    valid = {totp_for(device, offset_steps=s) for s in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def challenge(client, code, **data):
    return client.post(CHALLENGE, {"code": code, **data})


@pytest.fixture
def pending(client, clinic_admin, enrol, login):
    """A clinic admin with 2FA who has passed the password step but not the code."""
    device, _ = enrol(clinic_admin)
    client.logout()
    response = login(clinic_admin)
    assert response.status_code == 302
    return device


@pytest.mark.django_db
def test_password_step_of_an_enrolled_user_leads_to_the_challenge_page(client, staff, enrol, login):
    enrol(staff)
    client.logout()
    response = login(staff, follow=True)
    assert response.request["PATH_INFO"] == CHALLENGE
    html = response.content.decode()
    assert "<h1>Two-Factor Authentication</h1>" in html
    assert '<label for="id_code">Verification Code</label>' in html
    assert re.search(r'<input type="text" name="code"[^>]*autocomplete="one-time-code"', html)
    assert re.search(r'<button type="submit"[^>]*>Verify</button>', html)
    # Still only half signed in: no navigation to the rest of the site.
    assert "My Profile" not in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, with_pk",
    [
        ("home", None),
        ("profile", None),
        ("password_change", None),
        ("two_factor_setup", None),
        ("clinic_settings", "clinic"),
        ("clinic_edit", "clinic"),
        ("clinic_audit_log", "clinic"),
        ("user_list", None),
        ("user_detail", "user"),
        ("user_disable_2fa", "user"),
        ("admin:index", None),
        ("admin:users_user_changelist", None),
    ],
)
def test_every_other_page_redirects_to_the_challenge_before_the_code(client, pending, clinic, staff, name, with_pk):
    args = {None: [], "clinic": [clinic.pk], "user": [staff.pk]}[with_pk]
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{CHALLENGE}?next={quote(url, safe='')}"


@pytest.mark.django_db
def test_posts_before_the_code_are_refused_and_change_nothing(client, pending, clinic, clinic_admin):
    for url, data in [
        (reverse("two_factor_recovery_codes"), {}),
        (reverse("two_factor_disable_own"), {"code": next_code(pending)}),
        (reverse("clinic_edit", args=[clinic.pk]), {"name": "Renamed", "mandatory_2fa": "on"}),
    ]:
        response = client.post(url, data)
        assert response.status_code == 302 and response.url == CHALLENGE, url
    clinic.refresh_from_db()
    assert clinic.name == "Demo Clinic" and not clinic.mandatory_2fa
    assert devices.is_enrolled(clinic_admin)
    assert devices.recovery_codes_left(clinic_admin) == 10


@pytest.mark.django_db
def test_logout_still_works_before_the_code(client, pending):
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response.url == reverse("login")
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("home")).url.startswith(reverse("login"))


@pytest.mark.django_db
def test_correct_code_verifies_the_session_and_opens_the_site(client, pending):
    assert client.get(reverse("home")).status_code == 302
    response = challenge(client, next_code(pending))
    assert response.status_code == 302
    assert response.url == reverse("home")
    assert client.get(reverse("home")).status_code == 200
    assert client.get(reverse("profile")).status_code == 200
    assert client.session.get(DEVICE_ID_SESSION_KEY)


@pytest.mark.django_db
def test_wrong_code_keeps_the_user_on_the_page_with_an_error(client, pending):
    response = challenge(client, wrong_code_for(pending))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Two-Factor Authentication</h1>" in html
    assert WRONG_CODE_ERROR in html
    assert 'class="field field-error"' in html
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert client.get(reverse("home")).url.startswith(CHALLENGE)
    # A right code afterwards still works (throttling is off in tests by default).
    assert challenge(client, next_code(pending)).status_code == 302


@pytest.mark.django_db
def test_session_key_is_rotated_when_the_code_is_accepted(client, pending):
    before = client.session.session_key
    assert before and Session.objects.filter(session_key=before).exists()
    challenge(client, next_code(pending))
    after = client.session.session_key
    assert after and after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_session_key_is_not_rotated_by_a_wrong_code(client, pending):
    before = client.session.session_key
    challenge(client, wrong_code_for(pending))
    assert client.session.session_key == before


@pytest.mark.django_db
def test_next_on_this_site_is_honoured(client, pending, clinic):
    wanted = reverse("clinic_audit_log", args=[clinic.pk]) + "?page=1"
    redirect_to_challenge = client.get(wanted)
    page = client.get(redirect_to_challenge.url)
    assert f'<input type="hidden" name="next" value="{wanted.replace("&", "&amp;")}">' in page.content.decode()
    response = challenge(client, next_code(pending), next=wanted)
    assert response.status_code == 302
    assert response.url == wanted


@pytest.mark.django_db
@pytest.mark.parametrize(
    "evil",
    [
        "//evil.com",
        "//evil.com/home/",
        "https://evil.com",
        "http://evil.com/home/",
        "/\\evil.com",
        "\\\\evil.com",
        "\\/evil.com",
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        " //evil.com",
        "https:evil.com",
        "http:///evil.com",
    ],
)
def test_next_pointing_elsewhere_is_ignored(client, pending, evil):
    page = client.get(CHALLENGE, {"next": evil})
    assert page.status_code == 200
    assert "evil.com" not in page.content.decode() and "javascript" not in page.content.decode().lower()
    response = challenge(client, next_code(pending), next=evil)
    assert response.status_code == 302
    assert response.url == reverse("home")


@pytest.mark.django_db
def test_challenge_page_is_not_cached(client, pending):
    for response in (client.get(CHALLENGE), challenge(client, wrong_code_for(pending))):
        assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_challenge_needs_the_password_step_first(client):
    response = client.get(CHALLENGE)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.django_db
def test_challenge_sends_users_who_need_no_code_on(client, staff):
    client.force_login(staff)
    assert client.get(CHALLENGE).url == reverse("home")


@pytest.mark.django_db
def test_verified_user_revisiting_the_challenge_goes_on(client, pending):
    challenge(client, next_code(pending))
    response = client.get(CHALLENGE, {"next": reverse("profile")})
    assert response.status_code == 302 and response.url == reverse("profile")


@pytest.mark.django_db
def test_a_new_login_asks_for_a_code_again(client, pending, clinic_admin, login):
    challenge(client, next_code(pending))
    client.post(reverse("logout"))
    login(clinic_admin)
    assert client.get(reverse("home")).url.startswith(CHALLENGE)


@pytest.mark.django_db
def test_wrong_code_then_immediate_right_code_is_throttled(client, pending, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 1
    assert challenge(client, wrong_code_for(pending)).status_code == 200
    response = challenge(client, next_code(pending))
    assert response.status_code == 200
    html = response.content.decode()
    # One failure with factor 1 means a one-second wait, said without "too many" after one typo.
    assert "Wait a second and try again." in html
    assert "Too many" not in html
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert client.get(reverse("home")).url.startswith(CHALLENGE)
    pending.refresh_from_db()
    assert pending.throttling_failure_count == 1


@pytest.mark.django_db
def test_next_given_at_login_survives_the_challenge(client, staff, enrol, login):
    device, _ = enrol(staff)
    client.post(reverse("logout"))
    wanted = reverse("password_change")
    response = client.post(
        reverse("login"), {"username": staff.username, "password": PASSWORD, "next": wanted}, follow=True
    )
    assert response.request["PATH_INFO"] == CHALLENGE
    assert f'<input type="hidden" name="next" value="{wanted}">' in response.content.decode()
    response = challenge(client, next_code(device), next=wanted)
    assert response.url == wanted


@pytest.mark.django_db
def test_verifying_one_session_does_not_verify_another(client, pending, clinic_admin, login):
    other = Client()
    login(clinic_admin, http_client=other)
    challenge(client, next_code(pending))
    assert client.get(reverse("home")).status_code == 200
    assert other.get(reverse("home")).url.startswith(CHALLENGE)


@pytest.mark.django_db
def test_a_wrong_recovery_code_talks_about_recovery_codes_not_the_app(client, pending):
    response = client.post(CHALLENGE, {"code": "ZZZZZ-ZZZZZ", "method": "recovery"})
    html = response.content.decode()
    assert "That recovery code didn" in html and "each one works only once" in html
    assert "authenticator app and try again" not in html


@pytest.mark.django_db
def test_too_many_is_said_only_once_there_were_many(client, pending, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # no delays: only the lockout after 10 refuses
    wrong = wrong_code_for(pending)
    for _ in range(settings.CLINICAUTH_CODE_LOCKOUT_FAILURES - 1):
        assert "Too many" not in challenge(client, wrong).content.decode()
    challenge(client, wrong)  # the tenth
    assert "Too many incorrect codes. Code entry is locked for 15 minutes." in challenge(client, wrong).content.decode()


@pytest.mark.django_db
def test_the_code_page_says_what_to_do_when_phone_and_recovery_codes_are_lost(client, pending):
    for params in ({}, {"method": "recovery"}):
        html = client.get(CHALLENGE, params).content.decode()
        assert (
            "Lost your phone and your recovery codes? Ask your clinic administrator to reset your "
            "two-factor authentication." in html
        )
