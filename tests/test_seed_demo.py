"""`manage.py seed_demo [--password PASSWORD]`."""

import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from clinic_auth.twofactor import devices
from clinics.models import Clinic
from users.models import User

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS = {
    "demo-admin": ("Demo Clinic", User.Role.CLINIC_ADMIN),
    "demo-staff": ("Demo Clinic", User.Role.STAFF),
    "north-admin": ("Northside Clinic", User.Role.CLINIC_ADMIN),
    "north-staff": ("Northside Clinic", User.Role.STAFF),
}


def seed(*args) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def can_log_in(username: str, password: str) -> bool:
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302 and client.get(reverse("home")).status_code == 200


def documented_default_password() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Demo accounts", 1)[1].split("\n## ", 1)[0]
    return re.search(r"password for all of them is \*\*`([^`]+)`\*\*", section).group(1)


@pytest.mark.django_db
def test_creates_the_demo_clinics_and_accounts_and_prints_them():
    out = seed()
    assert set(Clinic.objects.values_list("name", flat=True)) == {"Demo Clinic", "Northside Clinic"}
    for username, (clinic_name, role) in ACCOUNTS.items():
        user = User.objects.get(username=username)
        assert user.clinic.name == clinic_name
        assert user.role == role
        assert user.is_active
        assert username in out
    password = documented_default_password()
    assert f"password: {password}" in out
    for username in ACCOUNTS:
        assert can_log_in(username, password), username


@pytest.mark.django_db
def test_running_twice_updates_and_never_duplicates():
    seed()
    before = dict(User.objects.values_list("username", "pk"))
    out = seed()
    assert dict(User.objects.values_list("username", "pk")) == before
    assert User.objects.count() == 4 and Clinic.objects.count() == 2
    assert out.count("updated") == 4 and "created" not in out


@pytest.mark.django_db
def test_running_again_keeps_existing_2fa(enrol, client):
    seed()
    staff = User.objects.get(username="demo-staff")
    enrol(staff)
    seed()
    assert devices.is_enrolled(staff)
    assert devices.recovery_codes_left(staff) == 10


@pytest.mark.django_db
def test_password_option_sets_every_accounts_password():
    seed()
    out = seed("--password", "another-long-passphrase")
    assert "password: another-long-passphrase" in out
    for username in ACCOUNTS:
        assert can_log_in(username, "another-long-passphrase"), username
    assert not can_log_in("demo-staff", documented_default_password())


@pytest.mark.django_db
def test_empty_password_is_refused_and_creates_nothing():
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("seed_demo", "--password", "", stdout=io.StringIO(), stderr=err)
    assert exit_info.value.code != 0
    assert "password must not be empty" in err.getvalue()
    assert not User.objects.exists()


def test_migrate_and_seed_against_another_sqlite_file(tmp_path):
    db_file = tmp_path / "x.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db_file}"}
    assert env["DATABASE_URL"].startswith("sqlite:////")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    for command in (["migrate", "--noinput"], ["seed_demo"]):
        result = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    for username in ACCOUNTS:
        assert username in result.stdout
    with sqlite3.connect(db_file) as db:
        rows = db.execute(
            "SELECT u.username, c.name FROM users_user u JOIN clinics_clinic c ON c.id = u.clinic_id ORDER BY 1"
        ).fetchall()
    assert rows == sorted((username, clinic) for username, (clinic, _) in ACCOUNTS.items())
    assert not (PROJECT_ROOT / "x.db").exists()


def test_readme_starts_with_make_run_and_make_test_then_accounts_then_configuration():
    readme = (PROJECT_ROOT / "README.md").read_text()
    first_block = re.search(r"```\w*\n(.*?)```", readme, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make run", "make test"]
    headings = re.findall(r"^#{2,3} (.+)$", readme, re.M)
    assert headings.index("Demo accounts") < headings.index("Configuration")
    accounts = readme.split("### Demo accounts", 1)[1].split("## ", 1)[0]
    for username, (clinic_name, _) in ACCOUNTS.items():
        assert re.search(rf"\| `{username}`\s*\| {clinic_name}\s*\|", accounts), username


def make_dry_run(*args: str) -> str:
    if shutil.which("make") is None:  # pragma: no cover - depends on the machine
        pytest.skip("make is not installed")
    result = subprocess.run(["make", "-n", "-B", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_installs_what_running_needs_migrates_seeds_an_empty_database_and_serves_on_port_8000():
    steps = make_dry_run("run")
    wanted = ["-m venv .venv", "pip install --quiet -e .\n", "manage.py migrate", "manage.py seed_demo --if-empty",
              "SITE_URL=${SITE_URL:-http://localhost:8000}", "manage.py runserver localhost:8000"]
    positions = [steps.find(step) for step in wanted]  # localhost: a valid relying-party ID for passkeys
    assert -1 not in positions, steps
    assert positions == sorted(positions), steps
    assert "[dev]" not in steps  # the test tools come with `make test`
    assert "pip install --quiet -e '.[dev]'" in make_dry_run("test")


def test_make_run_on_another_port_serves_there_with_the_passkey_origin_following_it():
    steps = make_dry_run("run", "PORT=8765", "HOST=127.0.0.1")
    assert "SITE_URL=${SITE_URL:-http://127.0.0.1:8765}" in steps and "runserver 127.0.0.1:8765" in steps


def test_make_run_with_demo_0_loads_no_demo_data():
    steps = make_dry_run("run", "DEMO=0")
    assert "seed_demo" not in steps and "manage.py migrate" in steps and "runserver" in steps


@pytest.mark.django_db
def test_if_empty_leaves_a_database_in_use_untouched(client):
    seed("--if-empty")
    staff = User.objects.get(username="demo-staff")
    staff.set_password("the staff member's own phrase 9")
    staff.save()
    browser = Client()
    assert browser.post(reverse("login"), {"username": "demo-staff", "password": "the staff member's own phrase 9"}).status_code == 302
    out = seed("--if-empty")
    assert "demo data not loaded, nothing changed" in out
    assert browser.get(reverse("home")).status_code == 200  # still signed in
    assert can_log_in("demo-staff", "the staff member's own phrase 9")
    assert not can_log_in("demo-staff", documented_default_password())


@pytest.mark.django_db
def test_if_empty_loads_nothing_next_to_a_real_clinic(clinic_factory):
    clinic_factory(name="Riverside Physio")
    seed("--if-empty")
    assert not User.objects.exists() and list(Clinic.objects.values_list("name", flat=True)) == ["Riverside Physio"]
