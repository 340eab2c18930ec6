"""Security emails: every change to a user's 2FA emails that user.

Emails go out on transaction commit, so each action runs inside
django_capture_on_commit_callbacks(execute=True), as a committed request would.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import dateformat, timezone

from tests.conftest import Browser, next_code, proved_just_now
from users.models import User

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def today() -> str:
    return dateformat.format(timezone.localtime(), "j M Y")


def only_email_to(user: User):
    assert len(mail.outbox) == 1, [m.subject for m in mail.outbox]
    (message,) = mail.outbox
    assert message.to == [user.email]
    return message


@pytest.fixture
def member(user_factory) -> User:
    return user_factory(username="nurse.joy", first_name="Joy", last_name="Nurse", email="joy@example.com")


@pytest.fixture
def enrolled(member, enrol, django_capture_on_commit_callbacks):
    """The member with 2FA, signed in on their own client; the outbox starts empty."""
    member_client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        device, codes = enrol(member, http_client=member_client)
    mail.outbox.clear()
    return member_client, device, codes


def test_turning_2fa_on_emails_the_user(member, enrol, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        enrol(member, http_client=Client())

    message = only_email_to(member)
    assert message.subject == "ClinicAuth: two-factor authentication turned on"
    assert "nurse.joy" in message.body and today() in message.body


def test_admin_disabling_2fa_emails_the_user_when_and_by_whom(
    enrolled, member, clinic_admin, django_capture_on_commit_callbacks
):
    admin_client = Browser()
    admin_client.force_login(clinic_admin)
    proved_just_now(admin_client)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("user_disable_2fa", args=[member.pk]))

    assert response.status_code == 302
    message = only_email_to(member)
    assert message.subject == "ClinicAuth: two-factor authentication turned off"
    assert f"on {today()}" in message.body
    assert "by Dana Admin (admin), an administrator of your clinic" in message.body
    assert "signed out everywhere" in message.body
    assert "set it up again" not in message.body


def test_the_disabled_email_says_so_when_the_user_must_set_up_again(
    member, clinic_admin, clinic, enrol, django_capture_on_commit_callbacks
):
    admin_client = Client()
    enrol(clinic_admin, http_client=admin_client)
    enrol(member, http_client=Client())
    clinic.mandatory_2fa = True
    clinic.save()

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("user_disable_2fa", args=[member.pk]))

    assert "you will be asked to set it up again when you next log in" in only_email_to(member).body


def test_turning_2fa_off_yourself_emails_you(enrolled, member, django_capture_on_commit_callbacks):
    member_client, device, _ = enrolled

    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(reverse("two_factor_disable_own"), {"code": next_code(device)})

    assert response.status_code == 302
    message = only_email_to(member)
    assert message.subject == "ClinicAuth: two-factor authentication turned off"
    assert "by you, from My Profile" in message.body


def test_regenerating_recovery_codes_emails_the_user(enrolled, member, django_capture_on_commit_callbacks):
    member_client, _, _ = enrolled

    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(reverse("two_factor_recovery_codes"))

    assert response.status_code == 302
    message = only_email_to(member)
    assert message.subject == "ClinicAuth: new recovery codes created"
    assert "old recovery codes no longer work" in message.body


def test_signing_in_with_a_recovery_code_emails_the_user(
    enrolled, member, login, django_capture_on_commit_callbacks
):
    _, _, codes = enrolled
    fresh = Client()
    login(member, http_client=fresh)

    with django_capture_on_commit_callbacks(execute=True):
        response = fresh.post(reverse("two_factor_challenge"), {"code": codes[0], "method": "recovery"})

    assert response.status_code == 302
    message = only_email_to(member)
    assert message.subject == "ClinicAuth: a recovery code was used to sign in"
    assert "You have 9 recovery codes left." in message.body


def test_a_failed_code_sends_no_email(enrolled, member, login, django_capture_on_commit_callbacks):
    fresh = Client()
    login(member, http_client=fresh)

    with django_capture_on_commit_callbacks(execute=True):
        fresh.post(reverse("two_factor_challenge"), {"code": "ABCDE-FGHJK", "method": "recovery"})

    assert mail.outbox == []


def test_a_user_without_an_email_address_is_skipped_quietly(
    user_factory, enrol, clinic_admin, django_capture_on_commit_callbacks
):
    no_address = user_factory(email="")
    admin_client = Browser()
    admin_client.force_login(clinic_admin)

    with django_capture_on_commit_callbacks(execute=True):
        enrol(no_address, http_client=Client())
        response = admin_client.post(reverse("user_disable_2fa", args=[no_address.pk]))

    assert response.status_code == 302
    assert mail.outbox == []


def email_connection_in_a_fresh_process(**env) -> dict:
    """The mail connection the settings build from these environment variables."""
    script = (
        "import django, json; django.setup();"
        "from django.core.mail import get_connection; c = get_connection();"
        "print(json.dumps({'backend': type(c).__module__, 'host': getattr(c, 'host', None),"
        " 'port': getattr(c, 'port', None), 'use_tls': getattr(c, 'use_tls', None)}))"
    )
    clean = {key: value for key, value in os.environ.items() if not key.startswith("EMAIL_")}
    clean.update(DJANGO_SETTINGS_MODULE="clinic_auth.settings", **env)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_email_is_queued_by_default_and_the_transport_comes_from_the_environment():
    assert email_connection_in_a_fresh_process()["backend"] == "mailer.backend"
    assert email_connection_in_a_fresh_process(EMAIL_QUEUE="off")["backend"] == "django.core.mail.backends.console"

    smtp = email_connection_in_a_fresh_process(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="smtp.clinic.example",
        EMAIL_PORT="587",
        EMAIL_USE_TLS="true",
        EMAIL_QUEUE="off",
    )
    assert smtp == {
        "backend": "django.core.mail.backends.smtp",
        "host": "smtp.clinic.example",
        "port": 587,
        "use_tls": True,
    }
