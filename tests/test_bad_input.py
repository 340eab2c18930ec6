"""Bad input: codes are normalised or refused with a form error, never a 500.

Every page gets the same inputs. The unicode cases spell the *currently valid* code
in other digit scripts, so they would pass if the server folded them to ASCII.
"""


import pytest
from django_otp import DEVICE_ID_SESSION_KEY
from django.urls import reverse

from clinic_auth.twofactor import devices
from tests.conftest import PASSWORD, next_code, setup_device, totp_for

CHALLENGE = reverse("two_factor_challenge")
SETUP = reverse("two_factor_setup")
DISABLE = reverse("two_factor_disable_own")


def in_script(code: str, zero: int) -> str:
    return "".join(chr(zero + int(d)) for d in code)


def bad_variants(code: str) -> dict[str, str]:
    return {
        "letters": "abcdef",
        "letters mixed in": code[:3] + "abc",
        "empty": "",
        "only spaces": "     ",
        "too short": code[:5],
        "too long": code + "1",
        "much too long": "1" * 33,
        "huge": "1" * 10_000,
        "arabic-indic digits": in_script(code, 0x0660),
        "arabic-indic digits with a space": in_script(code[:3], 0x0660) + " " + in_script(code[3:], 0x0660),
        "persian digits": in_script(code, 0x06F0),
        "devanagari digits": in_script(code, 0x0966),
        "full-width digits": in_script(code, 0xFF10),
        "mathematical bold digits": in_script(code, 0x1D7CE),
        "one full-width digit": code[:5] + in_script(code[5], 0xFF10),
        "nul byte inside": code[:3] + "\x00" + code[3:],
        "nul byte only": "\x00",
        "markup": "<script>alert(1)</script>",
        "sql": "123456' OR '1'='1",
        "negative": "-12345",
        "decimal": "12345.6",
    }


def assert_form_error(response, label: str) -> None:
    assert response.status_code == 200, label
    html = response.content.decode()
    assert 'class="field field-error"' in html, label


# --- the challenge ----------------------------------------------------------


@pytest.fixture
def pending(client, staff, enrol, login):
    device, _ = enrol(staff)
    client.post(reverse("logout"))
    login(staff)
    return device


@pytest.mark.django_db
def test_challenge_refuses_malformed_codes_with_a_form_error(client, pending):
    code = next_code(pending)
    for method in ({}, {"method": "recovery"}):
        for label, value in bad_variants(code).items():
            response = client.post(CHALLENGE, {"code": value, **method})
            assert_form_error(response, f"{label} {method}")
            assert DEVICE_ID_SESSION_KEY not in client.session, label
    # Nothing above counted as a guess or used the code up.
    pending.refresh_from_db()
    assert pending.throttling_failure_count == 0
    assert client.post(CHALLENGE, {"code": code}).status_code == 302


@pytest.mark.django_db
def test_challenge_without_a_code_field_is_a_form_error(client, pending):
    assert_form_error(client.post(CHALLENGE, {}), "no field")
    assert_form_error(client.post(CHALLENGE, {"code": ["123456", "654321"]}), "repeated field")


@pytest.mark.django_db
@pytest.mark.parametrize("shape", ["{a} {b}", " {a}{b} ", "{a}-{b}", "{a}  {b}", "\t{a} {b}\n"])
def test_challenge_accepts_spaces_and_dashes(client, pending, shape):
    code = next_code(pending)
    response = client.post(CHALLENGE, {"code": shape.format(a=code[:3], b=code[3:])})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_challenge_ignores_garbage_in_next_and_method(client, pending):
    for params in ({"next": "\x00"}, {"next": "/\x00/"}, {"method": "\x00"}, {"next": "x" * 5000}):
        assert client.get(CHALLENGE, params).status_code == 200, params
    response = client.post(CHALLENGE, {"code": next_code(pending), "next": "/home/\x00"})
    assert response.status_code == 302


# --- set-up -----------------------------------------------------------------


@pytest.mark.django_db
def test_setup_refuses_malformed_codes_with_a_form_error(client, staff):
    client.force_login(staff)
    client.get(SETUP)
    device = setup_device(client)
    code = totp_for(device)
    for label, value in bad_variants(code).items():
        assert_form_error(client.post(SETUP, {"code": value}), label)
        assert not devices.is_enrolled(staff), label
    assert_form_error(client.post(SETUP, {}), "no field")
    response = client.post(SETUP, {"code": f"{code[:3]} {code[3:]}"}, follow=True)
    assert response.status_code == 200
    assert devices.is_enrolled(staff)


# --- turning 2FA off --------------------------------------------------------


@pytest.mark.django_db
def test_self_disable_refuses_malformed_codes_with_a_form_error(client, staff, enrol):
    device, _ = enrol(staff)
    code = next_code(device)
    for label, value in bad_variants(code).items():
        assert_form_error(client.post(DISABLE, {"code": value}), label)
        assert devices.is_enrolled(staff), label
    response = client.post(DISABLE, {"code": f"{code[:3]} {code[3:]}"})
    assert response.status_code == 302
    assert not devices.is_enrolled(staff)


# --- the password step ------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "username, password",
    [
        ("staff\x00", PASSWORD),
        ("staff", PASSWORD + "\x00"),
        ("s" * 10_000, PASSWORD),
        ("staff", "p" * 100_000),
        ("", PASSWORD),
        ("staff", ""),
    ],
)
def test_login_with_odd_input_is_a_form_error(client, staff, username, password):
    response = client.post(reverse("login"), {"username": username, "password": password})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_login_ignores_garbage_next(client, staff):
    assert client.get(reverse("login"), {"next": "\x00"}).status_code == 200
    response = client.post(reverse("login"), {"username": "staff", "password": PASSWORD, "next": "\x00//evil.com"})
    assert response.status_code == 302 and response.url == reverse("home")
