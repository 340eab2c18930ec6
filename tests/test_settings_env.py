"""Settings come from the environment with safe defaults."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_NAMES = (
    "DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "HTTPS", "DJANGO_SETTINGS_MODULE", "SITE_URL",
    "CSRF_TRUSTED_ORIGINS", "WEBAUTHN_RP_ID", "WEBAUTHN_ORIGINS",
)
POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432"

PRINT_SETTINGS = """
import json, os
os.environ["DJANGO_SETTINGS_MODULE"] = "clinic_auth.settings"
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "SECRET_KEY": settings.SECRET_KEY,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "ENGINE": db["ENGINE"],
    "NAME": str(db["NAME"]),
    "HOST": db.get("HOST", ""),
    "PORT": db.get("PORT", ""),
    "USER": db.get("USER", ""),
    "SITE_URL": settings.SITE_URL,
    "CSRF_TRUSTED_ORIGINS": settings.CSRF_TRUSTED_ORIGINS,
    "RP_ID": settings.OTP_WEBAUTHN_RP_ID,
    "ORIGINS": settings.OTP_WEBAUTHN_ALLOWED_ORIGINS,
}))
"""


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(overrides)
    return env


def settings_run(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS], cwd=PROJECT_ROOT, env=clean_env(**env), capture_output=True, text=True, timeout=60
    )


def settings_under(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=PROJECT_ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_safe_defaults_without_any_environment():
    s = settings_under()
    assert s["DEBUG"] is False
    assert s["ENGINE"] == "django.db.backends.sqlite3"
    assert s["NAME"] == str(PROJECT_ROOT / "db.sqlite3")
    assert {"127.0.0.1", "localhost"} <= set(s["ALLOWED_HOSTS"])
    assert "*" not in s["ALLOWED_HOSTS"]
    assert len(s["SECRET_KEY"]) >= 50


def test_every_variable_is_read_from_the_environment():
    s = settings_under(
        DATABASE_URL="postgres://clinic:s3cret@db.example.org:5433/clinicauth",
        SECRET_KEY="k" * 60,
        DEBUG="1",
        ALLOWED_HOSTS="clinic.example.org, www.clinic.example.org",
    )
    assert s["ENGINE"] == "django.db.backends.postgresql"
    assert (s["HOST"], s["PORT"], s["NAME"], s["USER"]) == ("db.example.org", 5433, "clinicauth", "clinic")
    assert s["SECRET_KEY"] == "k" * 60
    assert s["DEBUG"] is True
    assert s["ALLOWED_HOSTS"] == ["clinic.example.org", "www.clinic.example.org"]


def test_production_refuses_to_start_without_site_url():
    result = settings_run(HTTPS="1", SECRET_KEY="k" * 60)
    assert result.returncode != 0 and "SITE_URL must be set when HTTPS=1" in result.stderr


@pytest.mark.parametrize(
    "value", ["clinic.example.org", "ftp://clinic.example.org", "https://clinic.example.org/app", "https://x@clinic.example.org", "http://clinic.example.org"]
)
def test_production_refuses_a_site_url_that_is_not_an_https_origin(value):
    result = settings_run(HTTPS="1", SECRET_KEY="k" * 60, SITE_URL=value)
    assert result.returncode != 0 and "SITE_URL must" in result.stderr, result.stderr


def test_site_url_gives_the_hosts_origins_and_passkey_relying_party():
    s = settings_under(HTTPS="1", SECRET_KEY="k" * 60, SITE_URL="https://clinic.example.org/")
    assert s["SITE_URL"] == "https://clinic.example.org"
    assert s["ALLOWED_HOSTS"] == ["clinic.example.org"]
    assert s["CSRF_TRUSTED_ORIGINS"] == ["https://clinic.example.org"]
    assert (s["RP_ID"], s["ORIGINS"]) == ("clinic.example.org", ["https://clinic.example.org"])


@pytest.mark.parametrize("value, expected", [("0", False), ("false", False), ("", False), ("true", True)])
def test_debug_flag_values(value, expected):
    assert settings_under(DEBUG=value)["DEBUG"] is expected


def test_absolute_sqlite_url():
    s = settings_under(DATABASE_URL="sqlite:////tmp/x.db")
    assert (s["ENGINE"], s["NAME"]) == ("django.db.backends.sqlite3", "/tmp/x.db")


@pytest.fixture
def postgres_database():
    name = f"clinicauth_env_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no PostgreSQL server at {POSTGRES_SERVER}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{POSTGRES_SERVER}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_seed_and_check_against_postgresql(postgres_database):
    env = {"DATABASE_URL": postgres_database}
    for command in (["migrate", "--noinput"], ["seed_demo", "--password", "pg-demo-password"], ["check"]):
        result = manage(*command, env=env)
        assert result.returncode == 0, result.stderr
        if command[0] == "seed_demo":
            assert "north-staff" in result.stdout
    with psycopg.connect(postgres_database) as db:
        usernames = [row[0] for row in db.execute("SELECT username FROM users_user ORDER BY 1")]
    assert usernames == ["demo-admin", "demo-staff", "north-admin", "north-staff"]
