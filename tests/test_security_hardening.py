"""Secrets at rest, lockouts, password throttling, sessions and headers."""

import os
import subprocess
import sys
import time
from urllib.parse import quote
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clinic_auth.twofactor import session as twofa_session
from clinic_auth.twofactor.models import AuditEvent, EncryptedTOTPDevice
from clinic_auth.twofactor.session import LAST_SEEN_KEY
from tests.conftest import Browser, PASSWORD, next_code
from users import login_throttle
from users.models import LoginThrottle

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def challenge(client, code, **extra):
    return client.post(reverse("two_factor_challenge"), {"code": code}, **extra)


@pytest.fixture
def enrolled_pending(client, staff, enrol, login):
    """A user with 2FA who has passed the password step but not the code."""
    device, codes = enrol(staff)
    client.logout()
    login(staff)
    return device, codes


# --- secrets at rest ------------------------------------------------------


@pytest.mark.django_db
def test_totp_secret_is_not_stored_in_clear(staff, enrol):
    device, _ = enrol(staff)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT encrypted_key FROM {EncryptedTOTPDevice._meta.db_table} WHERE id = %s", [device.pk]
        )
        (stored,) = cursor.fetchone()
    import base64

    secret = device.bin_key
    assert secret.hex() not in stored
    assert base64.b32encode(secret).decode().rstrip("=") not in stored
    assert len(secret) == 20


@pytest.mark.django_db
def test_without_the_encryption_key_the_secret_cannot_be_read(staff, enrol, settings):
    device, _ = enrol(staff)
    settings.CLINICAUTH_TOTP_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    device.refresh_from_db()
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        device.bin_key


@pytest.mark.django_db
def test_key_rotation_reencrypts_with_the_new_key(staff, enrol, settings):
    device, _ = enrol(staff)
    old_key = settings.CLINICAUTH_TOTP_ENCRYPTION_KEYS[0]
    secret = device.bin_key
    new_key = Fernet.generate_key().decode()
    settings.CLINICAUTH_TOTP_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_totp_keys", stdout=open(os.devnull, "w"))
    settings.CLINICAUTH_TOTP_ENCRYPTION_KEYS = [new_key]
    device.refresh_from_db()
    assert device.bin_key == secret


@pytest.mark.django_db
def test_admin_never_shows_the_secret(client, user_factory, enrol):
    operator = user_factory(username="operator", clinic=None, is_staff=True, is_superuser=True)
    device, _ = enrol(operator)
    import base64

    secret_b32 = base64.b32encode(device.bin_key).decode()
    for url in (
        reverse("admin:twofactor_encryptedtotpdevice_changelist"),
        reverse("admin:twofactor_encryptedtotpdevice_change", args=[device.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200
        body = response.content.decode()
        assert secret_b32 not in body and device.encrypted_key not in body and "otpauth://" not in body


# --- one-time codes -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("digits", ["١٢٣٤٥٦", "１２３４５６", "12345６"])
def test_only_ascii_digits_count_as_a_code(staff, enrol, digits):
    device, _ = enrol(staff)
    assert device.verify_token(digits) is False


@pytest.mark.django_db
def test_replayed_code_is_refused_and_audited(client, enrolled_pending, staff):
    device, _ = enrolled_pending
    code = next_code(device)
    assert challenge(client, code).status_code == 302
    other = Client()
    other.post(reverse("login"), {"username": staff.username, "password": PASSWORD})
    response = challenge(other, code)
    assert response.status_code == 200
    assert "already been used" in response.content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CODE_REPLAYED, target=staff).count() == 1


@pytest.mark.django_db
def test_ten_failures_lock_code_entry_with_a_clear_message_and_audit(client, enrolled_pending, staff, settings):
    device, _ = enrolled_pending
    settings.OTP_TOTP_THROTTLE_FACTOR = 1
    EncryptedTOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=9, throttling_failure_timestamp=timezone.now() - timedelta(hours=1)
    )
    challenge(client, "000000")
    device.refresh_from_db()
    assert device.throttling_failure_count == 10
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CODE_THROTTLED, target=staff).exists()
    response = challenge(client, next_code(device))
    assert response.status_code == 200
    assert "locked for 15 minutes" in response.content.decode()
    # The correct code was not even evaluated while locked.
    device.refresh_from_db()
    assert device.throttling_failure_count == 10


@pytest.mark.django_db
def test_lock_expires_after_the_lockout_period(client, enrolled_pending, settings):
    device, _ = enrolled_pending
    settings.OTP_TOTP_THROTTLE_FACTOR = 1
    EncryptedTOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=10,
        throttling_failure_timestamp=timezone.now() - timedelta(seconds=settings.CLINICAUTH_CODE_LOCKOUT_SECONDS + 1),
    )
    assert challenge(client, next_code(device)).status_code == 302


@pytest.mark.django_db
def test_fifty_failures_lock_until_an_admin_resets(client, enrolled_pending, settings):
    device, _ = enrolled_pending
    settings.OTP_TOTP_THROTTLE_FACTOR = 1
    EncryptedTOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=settings.CLINICAUTH_CODE_HARD_LOCK_FAILURES,
        throttling_failure_timestamp=timezone.now() - timedelta(days=30),
    )
    response = challenge(client, next_code(device))
    assert "ask your clinic administrator" in response.content.decode()
    assert settings.CLINICAUTH_CODE_HARD_LOCK_FAILURES < 100


# --- password throttling ---------------------------------------------------


def password_attempt(client, username, password, ip):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
def test_password_failures_lock_the_account_from_that_address_only(client, staff):
    for _ in range(10):
        assert password_attempt(client, staff.username, "wrong", "10.0.0.1").status_code == 200
    refused = password_attempt(client, staff.username, PASSWORD, "10.0.0.1")
    assert refused.status_code == 200 and "Too many failed sign-in attempts" in refused.content.decode()
    # The real user at the clinic, on another address, is not locked out.
    assert password_attempt(Client(), staff.username, PASSWORD, "10.0.0.2").status_code == 302


@pytest.mark.django_db
def test_unknown_usernames_are_throttled_the_same_way(client):
    for _ in range(10):
        password_attempt(client, "nobody", "wrong", "10.0.0.3")
    response = password_attempt(client, "nobody", "wrong", "10.0.0.3")
    assert "Too many failed sign-in attempts" in response.content.decode()


@pytest.mark.django_db
def test_address_wide_limit(client, user_factory):
    for n in range(50):
        password_attempt(client, f"guess{n}", "wrong", "10.0.0.4")
    victim = user_factory()
    response = password_attempt(client, victim.username, PASSWORD, "10.0.0.4")
    assert "Too many failed sign-in attempts" in response.content.decode()


@pytest.mark.django_db
def test_password_lock_is_not_forever(client, staff):
    for _ in range(10):
        password_attempt(client, staff.username, "wrong", "10.0.0.5")
    LoginThrottle.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    assert password_attempt(client, staff.username, PASSWORD, "10.0.0.5").status_code == 302


@pytest.mark.django_db
def test_another_users_success_never_resets_an_accounts_failures(client, staff, user_factory):
    other = user_factory()
    for _ in range(9):
        password_attempt(client, staff.username, "wrong", "10.0.0.6")
    assert password_attempt(Client(), other.username, PASSWORD, "10.0.0.6").status_code == 302
    password_attempt(client, staff.username, "wrong", "10.0.0.6")
    response = password_attempt(client, staff.username, PASSWORD, "10.0.0.6")
    assert "Too many failed sign-in attempts" in response.content.decode()


@pytest.mark.django_db
def test_empty_password_does_not_reset_the_counter(client, staff):
    for _ in range(9):
        password_attempt(client, staff.username, "wrong", "10.0.0.7")
    password_attempt(client, staff.username, "", "10.0.0.7")
    password_attempt(client, staff.username, "wrong", "10.0.0.7")
    response = password_attempt(client, staff.username, PASSWORD, "10.0.0.7")
    assert "Too many failed sign-in attempts" in response.content.decode()


@pytest.mark.django_db
def test_password_attempts_in_flight_count_before_the_password_is_checked(staff):
    """Parallel guesses cannot all read the same count: the eleventh is refused unchecked."""
    for _ in range(login_throttle.ACCOUNT_FROM_ADDRESS.limit):
        assert login_throttle.begin_attempt(username=staff.username, ip="10.0.0.9") is None
    assert login_throttle.begin_attempt(username=staff.username, ip="10.0.0.9") is not None


@pytest.mark.django_db
def test_a_correct_password_resets_the_accounts_row_in_place(client, staff):
    """The row stays (at zero): a parallel attempt that lost the INSERT race re-reads it."""
    for _ in range(3):
        password_attempt(client, staff.username, "wrong", "10.0.0.11")
    row = LoginThrottle.objects.get(key=f"acct-ip:{staff.username.casefold()}|10.0.0.11")
    assert row.failures == 3
    assert password_attempt(Client(), staff.username, PASSWORD, "10.0.0.11").status_code == 302
    row.refresh_from_db()
    assert (row.failures, row.locked_until) == (0, None)


@pytest.mark.django_db
def test_a_correct_password_gives_back_its_address_wide_slot(client, user_factory):
    for n in range(49):
        password_attempt(client, f"guess{n}", "wrong", "10.0.0.10")
    colleague = user_factory()
    assert password_attempt(Client(), colleague.username, PASSWORD, "10.0.0.10").status_code == 302
    assert LoginThrottle.objects.get(key="ip:10.0.0.10").failures == 49
    password_attempt(client, "guess-last", "wrong", "10.0.0.10")
    response = password_attempt(Client(), colleague.username, PASSWORD, "10.0.0.10")
    assert "Too many failed sign-in attempts" in response.content.decode()


@pytest.mark.django_db
def test_forwarded_for_is_ignored_without_a_trusted_proxy(client, staff):
    for n in range(10):
        client.post(
            reverse("login"),
            {"username": staff.username, "password": "wrong"},
            REMOTE_ADDR="10.0.0.8",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
    response = password_attempt(client, staff.username, PASSWORD, "10.0.0.8")
    assert "Too many failed sign-in attempts" in response.content.decode()


@pytest.mark.django_db
def test_forwarded_for_is_used_behind_a_configured_proxy(client, staff, settings):
    settings.CLINICAUTH_TRUSTED_PROXY_COUNT = 1
    for _ in range(10):
        client.post(
            reverse("login"),
            {"username": staff.username, "password": "wrong"},
            REMOTE_ADDR="10.0.0.9",
            HTTP_X_FORWARDED_FOR="192.0.2.50",
        )
    # Another client behind the same proxy is not affected.
    response = Client().post(
        reverse("login"),
        {"username": staff.username, "password": PASSWORD},
        REMOTE_ADDR="10.0.0.9",
        HTTP_X_FORWARDED_FOR="192.0.2.51",
    )
    assert response.status_code == 302


# --- sessions --------------------------------------------------------------


@pytest.mark.django_db
def test_session_key_rotates_at_login_and_at_the_code(client, staff, enrol, login):
    device, _ = enrol(staff)
    client.logout()
    client.get(reverse("login"))
    client.session.save()
    before_login = client.session.session_key
    login(staff)
    after_password = client.session.session_key
    assert after_password != before_login
    challenge(client, next_code(device))
    assert client.session.session_key != after_password


@pytest.mark.django_db
def test_logout_flushes_the_session(client, staff, enrol):
    enrol(staff)
    key = client.session.session_key
    client.post(reverse("logout"))
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=key).exists()
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_half_logged_in_state_expires_after_ten_minutes(client, enrolled_pending, settings):
    device, _ = enrolled_pending
    session = client.session
    session[twofa_session.PENDING_SINCE_KEY] = int(time.time()) - settings.CLINICAUTH_PENDING_LOGIN_TIMEOUT - 1
    session.save()
    response = challenge(client, next_code(device), follow=True)
    assert "took too long" in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated


@pytest.mark.django_db
def test_idle_session_ends(client, staff, settings):
    client.force_login(staff)
    assert client.get(reverse("home")).status_code == 200
    session = client.session
    session[LAST_SEEN_KEY] = int(time.time()) - settings.SESSION_IDLE_TIMEOUT - 1
    session.save()
    response = client.get(reverse("profile") + "?tab=x")
    # Signing in again leads back to the page that was asked for; the login page says why.
    assert response.status_code == 302 and response.url == reverse("login") + "?next=" + quote(reverse("profile") + "?tab=x")
    login_page = client.get(response.url).content.decode()
    assert "You were signed out after 30 minutes without activity" in login_page
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_a_script_whose_session_ended_is_not_given_a_next_to_come_back_to(client, staff, settings):
    client.force_login(staff)
    session = client.session
    session[LAST_SEEN_KEY] = int(time.time()) - settings.SESSION_IDLE_TIMEOUT - 1
    session.save()
    response = client.post(reverse("profile"), {})
    assert response.status_code == 302 and response.url == reverse("login")


@pytest.mark.django_db
def test_the_idle_countdown_logs_out_saying_why_and_comes_back_after_signing_in(client, staff, login):
    client.force_login(staff)
    token = client.get(reverse("profile")).context["csrf_token"]
    response = client.post(reverse("logout"), {"csrfmiddlewaretoken": token, "reason": "idle", "next": reverse("profile")})
    assert response.status_code == 302 and response.url == reverse("profile")
    followed = client.get(response.url)
    assert followed.status_code == 302 and followed.url == reverse("login") + "?next=" + quote(reverse("profile"))
    page = client.get(followed.url).content.decode()
    assert "You were signed out after 30 minutes without activity" in page
    signed_in = client.post(followed.url, {"username": staff.username, "password": PASSWORD, "next": reverse("profile")})
    assert signed_in.status_code == 302 and signed_in.url == reverse("profile")


@pytest.mark.django_db
def test_a_plain_log_out_says_so(client, staff):
    client.force_login(staff)
    response = client.post(reverse("logout"), follow=True)
    assert "You have logged out." in response.content.decode()
    assert "without activity" not in response.content.decode()


@pytest.mark.django_db
def test_session_ends_after_twelve_hours_even_when_active(client, staff, settings):
    client.force_login(staff)
    client.get(reverse("home"))
    session = client.session
    session[twofa_session.LOGIN_AT_KEY] = int(time.time()) - settings.SESSION_ABSOLUTE_TIMEOUT - 1
    session.save()
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert "every sign-in ends after 12 hours, however active" in client.get(response.url).content.decode()
    assert settings.SESSION_IDLE_TIMEOUT == 30 * 60 and settings.SESSION_ABSOLUTE_TIMEOUT == 12 * 60 * 60


@pytest.mark.django_db
def test_changing_password_ends_other_sessions(client, staff):
    other = Browser()
    other.force_login(staff)
    client.force_login(staff)
    new_password = "a new long passphrase 42"
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    assert other.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_no_path_skips_the_second_factor(client, enrolled_pending):
    """Nothing remembers a verified browser: the next login asks for a code again."""
    device, _ = enrolled_pending
    challenge(client, next_code(device))
    assert client.get(reverse("home")).status_code == 200
    cookies_before_logout = {key: morsel.value for key, morsel in client.cookies.items()}
    client.post(reverse("logout"))
    client.post(reverse("login"), {"username": "staff", "password": PASSWORD})
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_challenge"))
    # Replaying the old session cookie does not help either.
    stale = Client()
    for key, value in cookies_before_logout.items():
        stale.cookies[key] = value
    assert stale.get(reverse("home")).status_code == 302


# --- headers ---------------------------------------------------------------


@pytest.mark.django_db
def test_security_headers(client, staff, enrol):
    enrol(staff)
    client.logout()
    response = client.get(reverse("login"))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "0",
        "HTTPS": "1",
        "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-with-variety-0123456789",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.db'}",
        "ALLOWED_HOSTS": "clinic.example",
        "SITE_URL": "https://clinic.example",
        "TOTP_ENCRYPTION_KEYS": "n2Jq1VWq0m4Ex9I8nB1XlKj0-3e2c7Ue8PpEgPxs3QU=",  # a Fernet key, not one from SECRET_KEY
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update({"DEBUG": "0", "HTTPS": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_admin_site_accounts_must_enrol_before_any_page(client, user_factory, enrol):
    operator = user_factory(username="op", clinic=None, is_staff=True, is_superuser=True)
    client.force_login(operator)
    for url in (reverse("admin:index"), reverse("home"), reverse("admin:users_user_changelist")):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("two_factor_setup"))
    enrol(operator)
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.django_db
def test_admin_login_form_cannot_bypass_the_code(client, staff, enrol):
    enrol(staff)
    client.logout()
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.django_db
def test_the_countdown_log_out_arriving_after_the_server_ended_the_session_still_comes_back(client, staff, settings):
    client.force_login(staff)
    token = client.get(reverse("profile")).context["csrf_token"]
    session = client.session
    session[LAST_SEEN_KEY] = int(time.time()) - settings.SESSION_IDLE_TIMEOUT - 1
    session.save()
    response = client.post(reverse("logout"), {"csrfmiddlewaretoken": token, "reason": "idle", "next": reverse("profile")})
    assert response.status_code == 302 and response.url == reverse("login") + "?next=" + quote(reverse("profile"))
    assert "without activity" in client.get(response.url).content.decode()
    # Only a path on this site is taken.
    client.force_login(staff)
    session = client.session
    session[LAST_SEEN_KEY] = int(time.time()) - settings.SESSION_IDLE_TIMEOUT - 1
    session.save()
    elsewhere = client.post(reverse("logout"), {"reason": "idle", "next": "https://evil.example/"})
    assert elsewhere.url == reverse("login")
