"""Production serving as documented in README: gunicorn, several workers, WhiteNoise, env settings."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str):
    opener = urllib.request.build_opener(NoRedirect)
    try:
        return opener.open(url, timeout=10)
    except urllib.error.HTTPError as error:
        return error


def start_gunicorn(tmp: Path, **overrides: str):
    """The README's production command, `gunicorn -c gunicorn.conf.py clinic_auth.wsgi`, on a free port."""
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "HTTPS": "0",
        "SECRET_KEY": "test-only-" + "k" * 60,
        "DATABASE_URL": f"sqlite:///{tmp / 'prod.db'}",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(tmp / "static"),
        "WEB_CONCURRENCY": "3",
        "BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESS_LOG": str(tmp / "access.log"),
        **overrides,
    }
    if not (tmp / "prod.db").exists():
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=PROJECT_ROOT, env=env, check=True)
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=PROJECT_ROOT, env=env, check=True)
    log = open(tmp / "gunicorn.log", "w")
    process = subprocess.Popen(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "clinic_auth.wsgi"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        process.terminate()
        pytest.fail("gunicorn did not start: " + (tmp / "gunicorn.log").read_text())

    def stop():
        process.terminate()
        process.wait(timeout=10)
        log.close()

    return base, process, stop


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    base, process, stop = start_gunicorn(tmp_path_factory.mktemp("prod"))
    yield base, process
    stop()


def test_gunicorn_serves_the_login_page_with_several_workers(gunicorn_server):
    base, process = gunicorn_server
    response = fetch(base + "/")
    assert response.status == 200
    body = response.read().decode()
    assert "Log in" in body and 'name="username"' in body
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert worker_count(process, expected=3) == 3


def worker_count(process, *, expected: int) -> int:
    """The master's children; the first worker can answer before the last has forked."""
    deadline = time.time() + 10
    while True:
        workers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        if len(workers) >= expected or time.time() > deadline:
            return len(workers)
        time.sleep(0.1)


def test_whitenoise_serves_static_files(gunicorn_server):
    base, _ = gunicorn_server
    response = fetch(base + "/static/css/app.css")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/css")
    assert b".site-header" in response.read()


def test_protected_pages_redirect_to_login(gunicorn_server):
    base, _ = gunicorn_server
    for path in ("/home/", "/admin/", "/users/", "/profile/"):
        response = fetch(base + path)
        hops = 0
        while response.status == 302 and "/accounts/login/" not in response.headers["Location"] and hops < 3:
            response = fetch(base + response.headers["Location"])
            hops += 1
        assert response.status == 302, path
        assert "/accounts/login/" in response.headers["Location"], path


# --- the shipped gunicorn.conf.py --------------------------------


def fetch_with(url: str, headers: dict):
    opener = urllib.request.build_opener(NoRedirect)
    try:
        return opener.open(urllib.request.Request(url, headers=headers), timeout=10)
    except urllib.error.HTTPError as error:
        return error


@pytest.mark.parametrize("proxies, trusted", [("0", False), ("1", True)])
def test_x_forwarded_proto_counts_only_behind_a_trusted_proxy(tmp_path, proxies, trusted):
    base, _, stop = start_gunicorn(tmp_path, HTTPS="1", SITE_URL="https://clinic.example", TRUSTED_PROXY_COUNT=proxies)
    try:
        response = fetch_with(base + "/accounts/login/", {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    finally:
        stop()
    if trusted:
        assert response.status == 200
    else:
        # Plain HTTP that merely claims to be HTTPS is sent to HTTPS, never served as secure.
        assert response.status == 301 and response.headers["Location"].startswith("https://")


def test_access_log_leaves_out_query_strings_and_referrers(gunicorn_server, tmp_path_factory):
    base, _ = gunicorn_server
    fetch_with(base + "/accounts/login/?next=/users/%3Fq%3Dpatient-name-secret", {"Referer": base + "/?q=referrer-secret"})
    log_file = next(Path(tmp_path_factory.getbasetemp()).glob("prod*/access.log"))
    deadline = time.time() + 5
    while "/accounts/login/" not in log_file.read_text() and time.time() < deadline:
        time.sleep(0.1)
    logged = log_file.read_text()
    assert '"GET /accounts/login/ HTTP/1.1" 200' in logged
    assert "secret" not in logged
