"""HTTP sessions and a handle on the gunicorn deployment, for the concurrency suite.

Everything the tests do goes over HTTP with one cookie jar per session; the
only other channel is `manage.py shell -c` (same environment, same database)
to set up users and read counters back.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from types import SimpleNamespace

from tests.conftest import PASSWORD, totp_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
POSTGRES_SERVER = os.environ.get("CONCURRENCY_POSTGRES", "postgres://postgres@127.0.0.1:5432")
WORKERS = 4
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
RECOVERY_CODE_RE = re.compile(r"<li><code>([A-Z0-9]{5}-[A-Z0-9]{5})</code></li>")
MANUAL_KEY_RE = re.compile(r'id="manual-key">([A-Z2-7 ]+)<')

# Users made by the fixture, one per test so no test sees another's throttle state.
USERNAMES = ("guesser", "twin", "recoverer", "pwtarget", "lostphone")
ENROLLED = ("guesser", "twin", "recoverer", "lostphone")  # set up 2FA over HTTP before the tests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@dataclass
class Response:
    status: int
    location: str
    text: str


class Browser:
    """One browser: its own cookie jar (session + CSRF cookie), no redirect following."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirect)

    def request(self, path: str, data: dict | None = None) -> Response:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, data=body, timeout=60) as response:
                return Response(response.status, response.headers.get("Location", ""), response.read().decode())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.headers.get("Location", ""), error.read().decode(errors="replace"))

    def csrf(self, path: str) -> str:
        page = self.request(path)
        assert page.status == 200, (path, page.status, page.location)
        match = CSRF_RE.search(page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post_form(self, path: str, fields: dict, *, csrf: str) -> Response:
        return self.request(path, {"csrfmiddlewaretoken": csrf, **fields})

    def log_in(self, username: str, password: str = PASSWORD) -> Response:
        token = self.csrf("/accounts/login/")
        return self.post_form("/accounts/login/", {"username": username, "password": password}, csrf=token)


@dataclass
class Deployment:
    base: str
    env: dict
    keys: dict  # username -> raw TOTP key bytes
    recovery_codes: dict  # username -> list of codes

    def browser(self) -> Browser:
        return Browser(self.base)

    def logged_in(self, username: str) -> Browser:
        """A new session that has passed the password step (so it sits at the challenge)."""
        browser = self.browser()
        response = browser.log_in(username)
        assert response.status == 302, (response.status, response.text[:500])
        return browser

    def code(self, username: str, *, offset_steps: int = 0) -> str:
        return totp_for(SimpleNamespace(bin_key=self.keys[username]), offset_steps=offset_steps)

    def shell(self, code: str):
        return django_shell(self.env, code)

    def failed_evaluations(self, username: str, kind: str) -> int:
        """Wrong codes the server really evaluated for the user's device ("totp" or "recovery").

        Counted by a trigger on every write of a new failure timestamp (see
        install_evaluation_probe), so unlike the device's own counter it cannot
        lose an update if two requests ever evaluated in parallel.
        """
        table, device_id = self.shell(
            f"""
            user = User.objects.get(username={username!r})
            device = devices.confirmed_totp_device(user) if {kind!r} == "totp" else devices.recovery_device(user)
            print(json.dumps([device._meta.db_table, device.pk]))
            """
        )
        import psycopg

        with psycopg.connect(self.env["DATABASE_URL"]) as db:
            query = f"SELECT count(*) FROM {PROBE_TABLE} WHERE device_table = %s AND device_id = %s"
            return db.execute(query, (table, device_id)).fetchone()[0]


PROBE_TABLE = "concurrency_probe_failed_evaluation"


def install_evaluation_probe(env: dict) -> None:
    """Test-only instrumentation in the throwaway database: log each failed code evaluation."""
    import psycopg

    tables = django_shell(
        env,
        """
        from clinic_auth.twofactor.models import EncryptedTOTPDevice, RecoveryCodeDevice
        print(json.dumps([EncryptedTOTPDevice._meta.db_table, RecoveryCodeDevice._meta.db_table]))
        """,
    )
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
        db.execute(f"CREATE TABLE {PROBE_TABLE} (device_table text, device_id bigint, failures int)")
        db.execute(
            f"""
            CREATE FUNCTION {PROBE_TABLE}_record() RETURNS trigger AS $$
            BEGIN
              IF NEW.throttling_failure_timestamp IS NOT NULL
                 AND NEW.throttling_failure_timestamp IS DISTINCT FROM OLD.throttling_failure_timestamp THEN
                INSERT INTO {PROBE_TABLE} VALUES (TG_TABLE_NAME, NEW.id, NEW.throttling_failure_count);
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql
            """
        )
        for table in tables:
            db.execute(
                f"CREATE TRIGGER {PROBE_TABLE} AFTER UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {PROBE_TABLE}_record()"
            )


def django_shell(env: dict, code: str):
    """Run code in `manage.py shell -c` against the deployment's database; it prints one JSON line."""
    prelude = "import json\nfrom clinic_auth.twofactor import devices\nfrom users.models import User\n"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", prelude + textwrap.dedent(code)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


