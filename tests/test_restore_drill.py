"""The restore drill of docs/operations.md, performed on PostgreSQL: pg_dump, restore into a new
database, `check --deploy`, sign in with an existing authenticator code; and what happens when the
TOTP key was not kept: the check names the variable, `reset_2fa` is the way out.

It makes its own databases on the machine's PostgreSQL (127.0.0.1:5432, user postgres), whatever
database the rest of the suite runs on."""

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
PG = ["-h", "127.0.0.1", "-U", "postgres"]
SERVER_URL = "postgres://postgres@127.0.0.1:5432"

MAKE_ACCOUNT = """
from clinics.models import Clinic
from clinic_auth.twofactor.models import EncryptedTOTPDevice
from users.models import User
clinic = Clinic.objects.create(name="Riverside Physio", mandatory_2fa=True)
user = User(username="nurse", clinic=clinic)
user.set_password("a long enough passphrase 7")
user.save()
EncryptedTOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
User.objects.filter(pk=user.pk).update(twofa_enrolled=True)
"""

# Signs in through the real login and code pages of the restored database, with the code the
# nurse's phone shows now (computed from the stored, encrypted secret, as the app does).
SIGN_IN = """
import pyotp
from base64 import b32encode
from django.test import Client
from clinic_auth.twofactor.models import EncryptedTOTPDevice
device = EncryptedTOTPDevice.objects.get(user__username="nurse")
code = pyotp.TOTP(b32encode(device.bin_key).decode()).now()
browser = Client()
step1 = browser.post("/accounts/login/", {"username": "nurse", "password": "a long enough passphrase 7"})
assert step1.status_code == 302, step1.status_code
held = browser.get(step1.url)
assert held.status_code == 302 and held.url.startswith("/accounts/two-factor/?"), (held.status_code, held.get("Location"))
step2 = browser.post(held.url, {"code": code})
assert step2.status_code == 302, step2.status_code
home = browser.get(step2.url)
assert home.status_code == 200 and b"nurse" in home.content, home.status_code
print("SIGNED IN")
"""


def postgres_reachable() -> bool:
    if shutil.which("psql") is None or shutil.which("pg_dump") is None:
        return False
    return subprocess.run(["psql", *PG, "-tAc", "SELECT 1"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not postgres_reachable(), reason="needs PostgreSQL at 127.0.0.1:5432 and its client tools")


@pytest.fixture
def databases():
    """Two fresh database names (the live one, the one restored into), dropped afterwards."""
    names = [f"clinicauth_drill_{secrets.token_hex(4)}_{which}" for which in ("live", "restored")]
    yield names
    for name in names:
        subprocess.run(["dropdb", *PG, "--if-exists", name], capture_output=True)


def manage(*args: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def production_env(database: str, totp_key: str) -> dict:
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")},
        "DATABASE_URL": f"{SERVER_URL}/{database}",
        "SECRET_KEY": "drill-only-" + "s" * 60,
        "TOTP_ENCRYPTION_KEYS": totp_key,
        "DEBUG": "0",
        "HTTPS": "1",
        "SITE_URL": "https://clinic.example.org",
        "EMAIL_QUEUE": "off",
    }


def test_backup_restore_check_and_sign_in_with_an_existing_code(databases, tmp_path):
    live, restored = databases
    key = Fernet.generate_key().decode()
    env = production_env(live, key)
    subprocess.run(["createdb", *PG, live], check=True)
    manage("migrate", "--noinput", "-v0", env=env)
    manage("shell", "-c", MAKE_ACCOUNT, env=env)

    # Back up: the database (the keys are kept elsewhere, not in the dump).
    dump = tmp_path / "clinicauth.dump"
    subprocess.run(["pg_dump", *PG, "--format=custom", f"--file={dump}", live], check=True)
    assert key.encode() not in dump.read_bytes()

    # Restore into a new database, then check it before pointing the app at it.
    subprocess.run(["createdb", *PG, restored], check=True)
    subprocess.run(["pg_restore", *PG, "--no-owner", f"--dbname={restored}", str(dump)], check=True)
    restored_env = production_env(restored, key)
    checked = manage("check", "--deploy", "--fail-level", "ERROR", env=restored_env)
    assert "twofactor.E011" not in checked.stderr
    assert manage("migrate", "--check", env=restored_env).returncode == 0  # nothing left to apply

    # The nurse signs in with the code her phone shows: her secret came back with the database.
    signed_in = manage("shell", "-c", SIGN_IN, env={**restored_env, "HTTPS": "0", "ALLOWED_HOSTS": "testserver"})
    assert "SIGNED IN" in signed_in.stdout


def test_without_the_key_the_check_names_it_and_reset_2fa_is_the_way_out(databases, tmp_path):
    live, _ = databases
    env = production_env(live, Fernet.generate_key().decode())
    subprocess.run(["createdb", *PG, live], check=True)
    manage("migrate", "--noinput", "-v0", env=env)
    manage("shell", "-c", MAKE_ACCOUNT, env=env)

    lost_key = production_env(live, Fernet.generate_key().decode())
    refused = manage("check", "--deploy", "--fail-level", "ERROR", env=lost_key, check=False)
    assert refused.returncode != 0
    assert "twofactor.E011" in refused.stderr and "TOTP_ENCRYPTION_KEYS" in refused.stderr
    assert "nurse" in refused.stderr and "reset_2fa" in refused.stderr

    manage("reset_2fa", "nurse", env=lost_key)
    assert manage("check", "--deploy", "--fail-level", "ERROR", env=lost_key).returncode == 0
