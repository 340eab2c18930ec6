"""Harness for the browser suite: the app served on a free loopback port with its own
SQLite database, Debian's Chromium driven by Playwright, axe-core injected into pages.

No `playwright install`: the browser is /usr/bin/chromium (or $E2E_CHROMIUM). Without it
the suite is skipped on a laptop and fails under CI (env CI set), so a machine missing the
browser can never pass silently.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "clinicauth-demo"


def _missing(what: str) -> None:
    """A missing tool skips the suite on a developer machine and fails it in CI."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{what} (CI is set, so this is a failure; .ci/run installs it)", pytrace=False)
    pytest.skip(what)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pytest_sessionstart(session):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)


_browser_started = False


def pytest_terminal_summary(terminalreporter):
    if _browser_started and ARTIFACTS.is_dir():
        count = len(list(ARTIFACTS.glob("*.png")))
        terminalreporter.write_line(f"e2e screenshots ({count}): {ARTIFACTS}")


def serve(workdir: Path, **extra_env: str):
    """`manage.py runserver` on a free port of localhost, on a fresh database with the demo accounts."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'e2e.sqlite3'}",
        "DEBUG": "0",
        "OTP_THROTTLE_FACTOR": "0",
        # A file per message (in workdir/mail), so tests can follow the links in invitation and reset e-mails.
        # Sent at once, not queued for `runmailer` (the queue has its own test).
        "EMAIL_QUEUE": "off",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(workdir / "mail"),
        "PYTHONUNBUFFERED": "1",
        # Browsers serve passkeys to a host name, never an IP address: the suite opens localhost.
        "SITE_URL": f"http://localhost:{port}",  # e-mailed links, the passkey origin and relying party
        **extra_env,
    }
    manage = [sys.executable, str(ROOT / "manage.py")]

    def run(*args: str) -> None:
        subprocess.run([*args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)

    run(*manage, "migrate", "--noinput")
    run(*manage, "seed_demo", "--password", PASSWORD)
    run(sys.executable, str(Path(__file__).with_name("seed_e2e.py")), PASSWORD)

    log = open(workdir / "server.log", "wb")
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/accounts/login/", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            log.close()
            raise RuntimeError(f"server did not start:\n{(workdir / 'server.log').read_text()[-3000:]}")
        time.sleep(0.2)
    yield url
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="session")
def app_server_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-server")


@pytest.fixture(scope="session")
def app_server(app_server_dir):
    yield from serve(app_server_dir)


@pytest.fixture(scope="session")
def short_idle_server(tmp_path_factory):
    """The same app with a 20-second idle logout announced 12 seconds before, for the idle warning."""
    yield from serve(tmp_path_factory.mktemp("e2e-idle"), SESSION_IDLE_TIMEOUT="20", IDLE_WARNING_SECONDS="12")


@pytest.fixture(scope="session")
def short_absolute_server(tmp_path_factory):
    """The same app whose every sign-in ends 25 seconds after it began (however active), announced
    15 seconds before: the warning counts down to the absolute limit, not the idle one."""
    yield from serve(
        tmp_path_factory.mktemp("e2e-absolute"), SESSION_ABSOLUTE_TIMEOUT="25", SESSION_IDLE_TIMEOUT="600", IDLE_WARNING_SECONDS="15"
    )


@pytest.fixture(scope="session")
def short_reauth_server(tmp_path_factory):
    """The same app where a sensitive action asks "Confirm it's you" 10 seconds after the last proof:
    long enough to log in and set up 2FA (itself a sensitive action) on a slow machine."""
    yield from serve(tmp_path_factory.mktemp("e2e-reauth"), REAUTH_WINDOW="10")


@pytest.fixture(scope="session")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    global _browser_started
    _browser_started = True

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_JS.is_file():
        _missing(f"axe-core not found at {AXE_JS} (npm ci at the project root)")
    return AXE_JS.read_text()


@pytest.fixture
def new_page(browser, app_server, axe_source):
    """Open a page in a fresh browser context (its own cookies: one per person)."""
    contexts = []

    def open_page(width: int = 1280, height: int = 900, base_url: str | None = None):
        context = browser.new_context(
            base_url=base_url or app_server,
            viewport={"width": width, "height": height},
            locale="en-GB",
            timezone_id="UTC",
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.axe_source = axe_source
        page.csp_errors = []  # what the browser refused under the Content-Security-Policy
        page.on(
            "console",
            lambda msg: page.csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def mailbox(app_server_dir, app_server):
    """What app_server sent, read from its file-based e-mail backend (see pages.Mailbox)."""
    from .pages import Mailbox

    return Mailbox(app_server_dir / "mail")
