"""The operator's `manage.py reset_2fa USERNAME`."""

import os
import shutil
import sqlite3
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from clinic_auth.twofactor import devices
from clinic_auth.twofactor.models import AuditEvent
from users.models import User

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def reset(username: str) -> str:
    out = StringIO()
    call_command("reset_2fa", username, stdout=out)
    return out.getvalue()


@pytest.fixture
def member(user_factory) -> User:
    return user_factory(username="lost.phone", email="lost@example.com")


@pytest.fixture
def member_client(member, enrol) -> Client:
    c = Client()
    enrol(member, http_client=c)
    return c


def test_reset_removes_2fa_ends_sessions_audits_and_says_so(
    member, member_client, clinic, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        output = reset("lost.phone")

    assert output == (
        "Two-factor authentication reset for lost.phone (removed: authenticator app; 10 recovery codes); "
        "all their sessions have ended.\n"
    )
    assert not devices.is_enrolled(member)
    assert devices.recovery_device(member) is None
    ended = member_client.get(reverse("home"))
    assert ended.status_code == 302 and ended.url.startswith(reverse("login"))
    (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.DISABLED_BY_OPERATOR)
    assert (event.actor, event.target, event.target_username, event.clinic) == (None, member, "lost.phone", clinic)
    (message,) = mail.outbox
    assert message.to == ["lost@example.com"] and "by the system operator" in message.body


def test_reset_of_a_clinic_admin_with_mandatory_2fa_sends_them_to_set_up(
    user_factory, enrol, clinic, login
):
    locked_out = user_factory(username="boss", role=User.Role.CLINIC_ADMIN)
    enrol(locked_out, http_client=Client())
    clinic.mandatory_2fa = True
    clinic.save()

    output = reset("boss")

    assert "they will set it up again at their next login" in output
    response = login(locked_out, http_client=Client(), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("two_factor_setup"))


def test_reset_of_a_user_without_2fa_changes_nothing_and_says_so(member):
    assert reset("lost.phone") == "lost.phone has no two-factor authentication set up; nothing changed.\n"
    assert not AuditEvent.objects.exists()


def test_unknown_user_is_a_command_error(member):
    with pytest.raises(CommandError, match="No user called 'ghost'"):
        reset("ghost")
    assert not AuditEvent.objects.exists()


def test_username_must_match_exactly(member, member_client):
    with pytest.raises(CommandError):
        reset("LOST.PHONE")
    assert devices.is_enrolled(member)


# --- as the operator runs it: a separate process and its exit status -------


SET_UP_ENROLLED_USER = """
from clinics.models import Clinic
from users.models import User
from clinic_auth.twofactor import devices, services
from clinic_auth.twofactor.totp import services as totp_services

user = User.objects.create_user("lost.phone", clinic=Clinic.objects.create(name="Operator Clinic"))
device = totp_services.totp_setup_begin(user=user)
device.confirmed = True
device.save()
"""


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory) -> Path:
    """A real database file, migrated once, as an operator's machine would have."""
    path = tmp_path_factory.mktemp("operator") / "template.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=PROJECT_ROOT, env=env, check=True)
    return path


@pytest.fixture
def database_env(migrated_database, tmp_path) -> dict:
    """Environment for manage.py processes, on a fresh copy of the migrated database."""
    copy = tmp_path / "copy.sqlite3"
    shutil.copyfile(migrated_database, copy)
    return {**os.environ, "DATABASE_URL": f"sqlite:///{copy}", "PYTHONUNBUFFERED": "1"}


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_unknown_user_exits_non_zero_with_a_clear_message(database_env):
    result = manage(database_env, "reset_2fa", "ghost")

    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: No user called 'ghost'."
    assert result.stdout == ""


def test_a_real_reset_exits_zero(tmp_path, database_env):
    assert manage(database_env, "shell", "-c", SET_UP_ENROLLED_USER).returncode == 0
    result = manage(database_env, "reset_2fa", "lost.phone")

    assert result.returncode == 0, result.stderr
    assert "Two-factor authentication reset for lost.phone" in result.stdout
    copy = sqlite3.connect(tmp_path / "copy.sqlite3")
    audit_rows = copy.execute(
        f"select actor_id, target_username from {AuditEvent._meta.db_table} where action = ?",
        [AuditEvent.Action.DISABLED_BY_OPERATOR.value],
    ).fetchall()
    devices_left = copy.execute(f"select count(*) from {devices.EncryptedTOTPDevice._meta.db_table}").fetchone()
    copy.close()
    assert audit_rows == [(None, "lost.phone")]
    assert devices_left == (0,)
