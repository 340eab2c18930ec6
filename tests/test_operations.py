"""What an operator relies on in production: the health check, the start-up check of the TOTP keys,
and one JSON line per security event on a logger they can ship."""

import json
import logging
import os
import re
import subprocess
import sys
import urllib.request
from io import StringIO
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from pythonjsonlogger.json import JsonFormatter
from django.core.management.base import SystemCheckError
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from clinic_auth.twofactor import crypto
from clinic_auth.twofactor.models import AuditEvent

# --- GET /healthz -----------------------------------------------------------------


def test_healthz_answers_200_while_the_database_answers_with_no_session_and_no_data(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok"}
    assert "Set-Cookie" not in response.headers and not response.cookies
    assert "no-store" in response.headers["Cache-Control"]
    assert Client().head("/healthz").status_code == 200
    assert Client().post("/healthz").status_code == 405


def test_healthz_answers_503_when_the_database_does_not(db):
    with mock.patch("clinic_auth.health.connection.cursor", side_effect=OperationalError("connection refused")):
        response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "unavailable"}


def test_healthz_is_not_redirected_to_https(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    assert Client().get("/healthz").status_code == 200
    assert Client().get(reverse("login")).status_code == 301


def test_healthz_sends_a_session_held_at_a_gate_to_its_gate(client, clinic, staff):
    clinic.mandatory_2fa = True
    clinic.save()
    client.force_login(staff)
    response = client.get("/healthz")
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_setup"))


# --- the TOTP keys, checked at `check --deploy` and at gunicorn's start -------------------------


def deploy_check() -> str:
    err = StringIO()
    call_command("check", deploy=True, fail_level="ERROR", stdout=StringIO(), stderr=err)
    return err.getvalue()


@pytest.fixture
def enrolled_staff(staff, enrol):
    enrol(staff)
    return staff


def test_the_deploy_check_passes_when_every_secret_decrypts(enrolled_staff, settings):
    settings.CLINICAUTH_TOTP_KEY_FROM_SECRET_KEY = False
    out = deploy_check()
    assert "twofactor.E01" not in out and "twofactor.W011" not in out


def test_a_missing_key_is_one_clear_error_naming_the_variable_and_the_way_out(enrolled_staff, settings):
    settings.CLINICAUTH_TOTP_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key left out
    with pytest.raises(SystemCheckError) as failed:
        deploy_check()
    message = str(failed.value)
    assert "twofactor.E011" in message and "cannot decrypt the authenticator app secret of 1 user(s) (1 stored): staff." in message
    assert "TOTP_ENCRYPTION_KEYS" in message and "reset_2fa --undecryptable" in message


def test_reset_2fa_undecryptable_resets_everyone_the_lost_key_locked_out_and_the_check_passes(
    enrolled_staff, user_factory, enrol, settings
):
    others = [user_factory(username=f"nurse{n}") for n in range(12)]
    for user in others:
        enrol(user, http_client=Client())
    keeps_key = user_factory(username="late")
    settings.CLINICAUTH_TOTP_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(SystemCheckError) as failed:
        deploy_check()
    assert "of 13 user(s) (13 stored)" in str(failed.value) and "and 3 more" in str(failed.value)
    enrol(keeps_key, http_client=Client())  # set up under the new key: it decrypts, and is kept
    out = StringIO()
    call_command("reset_2fa", "--undecryptable", stdout=out)
    assert out.getvalue().count("Two-factor authentication reset for") == 13
    assert "twofactor.E011" not in deploy_check()
    from clinic_auth.twofactor import devices

    assert devices.is_enrolled(keeps_key) and not devices.is_enrolled(enrolled_staff)
    call_command("reset_2fa", "--undecryptable", stdout=out)
    assert "nobody to reset" in out.getvalue()


def test_reset_2fa_needs_a_username_or_undecryptable(db):
    with pytest.raises(CommandError, match="at least one username"):
        call_command("reset_2fa", stdout=StringIO())


def test_the_old_key_listed_second_still_decrypts(enrolled_staff, settings):
    old = list(settings.CLINICAUTH_TOTP_ENCRYPTION_KEYS)
    settings.CLINICAUTH_TOTP_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *old]
    assert "twofactor.E011" not in deploy_check()


def test_a_malformed_key_is_a_clear_error_too(db, settings):
    settings.CLINICAUTH_TOTP_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    crypto._cipher.cache_clear()
    with pytest.raises(SystemCheckError) as failed:
        deploy_check()
    assert "twofactor.E010" in str(failed.value) and "TOTP_ENCRYPTION_KEYS" in str(failed.value)


def test_a_key_derived_from_secret_key_is_a_deploy_warning(db, settings):
    settings.CLINICAUTH_TOTP_KEY_FROM_SECRET_KEY = True
    assert "twofactor.W011" in deploy_check()


MAKE_DEVICE = """
from clinics.models import Clinic
from clinic_auth.twofactor.models import EncryptedTOTPDevice
from users.models import User
user = User.objects.create(username="nurse", clinic=Clinic.objects.create(name="C"))
EncryptedTOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
"""


def test_gunicorn_refuses_to_start_when_a_secret_does_not_decrypt_and_starts_with_the_key(tmp_path):
    from tests.test_production_serving import GUNICORN, PROJECT_ROOT, free_port, start_gunicorn

    key = Fernet.generate_key().decode()
    env = {
        **os.environ, "DEBUG": "0", "SECRET_KEY": "test-only-" + "k" * 60, "TOTP_ENCRYPTION_KEYS": key,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}", "BIND": f"127.0.0.1:{free_port()}",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=PROJECT_ROOT, env=env, check=True)
    subprocess.run([*manage, "shell", "-c", MAKE_DEVICE], cwd=PROJECT_ROOT, env=env, check=True)
    refused = subprocess.run(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "clinic_auth.wsgi"],
        cwd=PROJECT_ROOT, env={**env, "TOTP_ENCRYPTION_KEYS": Fernet.generate_key().decode()},
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode != 0
    assert "twofactor.E011" in refused.stderr and "TOTP_ENCRYPTION_KEYS" in refused.stderr and "nurse" in refused.stderr
    base, _, stop = start_gunicorn(tmp_path, TOTP_ENCRYPTION_KEYS=key)  # with its key it serves
    try:
        assert urllib.request.urlopen(base + "/healthz", timeout=10).status == 200
    finally:
        stop()


# --- security events as JSON lines --------------------------------------------------------------


@pytest.fixture
def security_lines():
    """What the "clinicauth.security" logger's handler writes, one parsed JSON object per line."""
    (handler,) = [h for h in logging.getLogger("clinicauth.security").handlers if isinstance(h.formatter, JsonFormatter)]
    buffer = StringIO()
    previous = handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    handler.setStream(previous)


@pytest.mark.django_db(transaction=True)  # real commits, so each line is written inside its request
def test_every_audit_event_is_one_json_line_with_who_where_and_which_request(staff, enrol, security_lines):
    browser = Client(HTTP_USER_AGENT="Mozilla/5.0 (front desk)")
    enrol(staff, http_client=browser)
    (line,) = [line for line in security_lines() if line["action"] == AuditEvent.Action.DEVICE_CONFIRMED]
    event = AuditEvent.objects.get(pk=line["event_id"])
    assert event.action == AuditEvent.Action.DEVICE_CONFIRMED and event.target == staff
    assert line["logger"] == "clinicauth.security" and line["level"] == "INFO" and line["time"]
    assert line["member"] == "staff" and line["actor"] == "staff" and line["clinic"] == staff.clinic_id
    assert line["ip"] == "127.0.0.1" and line["user_agent"] == "Mozilla/5.0 (front desk)"
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
    answered = browser.get(reverse("home")).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", answered) and answered != line["request_id"]


def test_a_rolled_back_change_logs_nothing(staff, security_lines, django_capture_on_commit_callbacks):
    from django.db import transaction

    from clinic_auth.twofactor import audit

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                audit.record(AuditEvent.Action.DISABLED_BY_OPERATOR, actor=None, target=staff)
                raise RuntimeError("undo")
        except RuntimeError:
            pass
    assert security_lines() == []


def test_the_proxys_request_id_is_kept_only_behind_a_trusted_proxy(db, settings):
    given = "proxy-request-0123456789"
    settings.CLINICAUTH_TRUSTED_PROXY_COUNT = 0
    assert Client().get("/healthz", HTTP_X_REQUEST_ID=given).headers["X-Request-ID"] != given
    settings.CLINICAUTH_TRUSTED_PROXY_COUNT = 1
    assert Client().get("/healthz", HTTP_X_REQUEST_ID=given).headers["X-Request-ID"] == given
    assert Client().get("/healthz", HTTP_X_REQUEST_ID="bad id\n").headers["X-Request-ID"] != "bad id\n"


def test_secrets_the_database_role_may_not_read_are_an_error_not_a_silent_pass(enrolled_staff):
    from django.db import ProgrammingError

    refused = ProgrammingError("permission denied for table twofactor_encryptedtotpdevice")
    with mock.patch("clinic_auth.twofactor.devices.undecryptable_totp_owners", side_effect=refused):
        with pytest.raises(SystemCheckError) as failed:
            deploy_check()
    assert "twofactor.E012" in str(failed.value) and "permission denied" in str(failed.value)


def test_deploy_manage_runs_manage_py_with_the_settings_file(tmp_path):
    from tests.test_production_serving import PROJECT_ROOT

    env_file = tmp_path / "env"
    database = tmp_path / "from-env-file.db"
    env_file.write_text(f'DEBUG=1\nDATABASE_URL=sqlite:///{database}\nDEFAULT_FROM_EMAIL="ClinicAuth <no-reply@clinic.example>"\n')
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    script = str(PROJECT_ROOT / "deploy" / "manage")
    migrated = subprocess.run([script, "migrate", "-v0"], env={**clean, "CLINICAUTH_ENV": str(env_file)}, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    assert database.exists()  # the database the settings file names, not the default one
    shown = subprocess.run(
        [script, "shell", "-c", "from django.conf import settings; print(settings.DEFAULT_FROM_EMAIL)"],
        env={**clean, "CLINICAUTH_ENV": str(env_file)}, capture_output=True, text=True,
    )
    assert shown.stdout.strip().endswith("ClinicAuth <no-reply@clinic.example>")
    missing = subprocess.run([script, "check"], env={**clean, "CLINICAUTH_ENV": str(tmp_path / "none")}, capture_output=True, text=True)
    assert missing.returncode == 1 and "cannot read" in missing.stderr
