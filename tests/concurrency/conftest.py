"""A real deployment for the concurrency suite: fresh PostgreSQL database, gunicorn with 4 workers."""

from __future__ import annotations

import base64
import html
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.concurrency.harness import (
    CSRF_RE,
    ENROLLED,
    GUNICORN,
    MANUAL_KEY_RE,
    POSTGRES_SERVER,
    PROJECT_ROOT,
    RECOVERY_CODE_RE,
    USERNAMES,
    WORKERS,
    Deployment,
    django_shell,
    free_port,
    install_evaluation_probe,
)
from tests.conftest import PASSWORD


def _wait_until_serving(base: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(base + "/accounts/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    process.terminate()
    pytest.fail("gunicorn did not start:\n" + log_path.read_text())


def _enrol_over_http(deployment: Deployment, username: str) -> None:
    """Set up 2FA as the user would: log in, type the key shown on the set-up page into the app, confirm."""
    browser = deployment.logged_in(username)
    page = browser.request("/accounts/two-factor/setup/")
    assert page.status == 200, (page.status, page.location)
    token = CSRF_RE.search(page.text).group(1)
    deployment.keys[username] = base64.b32decode(MANUAL_KEY_RE.search(page.text).group(1).replace(" ", ""))
    response = browser.post_form("/accounts/two-factor/setup/", {"code": deployment.code(username)}, csrf=token)
    assert (response.status, response.location) == (302, "/accounts/two-factor/recovery-codes/"), response
    response = browser.request(response.location)
    codes = [html.unescape(code) for code in RECOVERY_CODE_RE.findall(response.text)]
    assert len(codes) == 10, response.text[:2000]
    deployment.recovery_codes[username] = codes


@pytest.fixture(scope="session")
def deployment(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("concurrency")
    db_name = f"clinicauth_concurrency_{os.getpid()}"
    admin = psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=5)
    admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{db_name}"')

    env = {
        **os.environ,
        "DATABASE_URL": f"{POSTGRES_SERVER}/{db_name}",
        "DEBUG": "0",
        "HTTPS": "0",
        "OTP_THROTTLE_FACTOR": "1",  # the real throttle, as in production
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore:No directory at",
    }
    process = None
    log = open(tmp / "gunicorn.log", "w")
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=PROJECT_ROOT, env=env, check=True
        )
        install_evaluation_probe(env)
        django_shell(
            env,
            f"""
            from clinics.models import Clinic
            clinic = Clinic.objects.create(name="Concurrency Clinic")
            for name in {USERNAMES!r}:
                user = User(username=name, clinic=clinic, email=name + "@example.com", first_name=name.title())
                user.set_password({PASSWORD!r})
                user.save()
            print(json.dumps(User.objects.count()))
            """,
        )
        port = free_port()
        process = subprocess.Popen(
            [str(GUNICORN), "clinic_auth.wsgi", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--timeout", "60"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(base, process, tmp / "gunicorn.log")
        deployment = Deployment(base=base, env=env, keys={}, recovery_codes={})
        for username in ENROLLED:
            _enrol_over_http(deployment, username)
        yield deployment
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()
        server_log = (tmp / "gunicorn.log").read_text()
        # No 500 and no crash. A refused request (403) is logged by Django with its PermissionDenied
        # traceback: that is the app answering as designed, e.g. an admin removed a moment ago.
        assert "Internal Server Error" not in server_log, server_log
        assert server_log.count("Traceback") <= server_log.count("Forbidden (Permission denied)"), server_log
