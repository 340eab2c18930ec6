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


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prod")
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "HTTPS": "0",
        "SECRET_KEY": "test-only-" + "k" * 60,
        "DATABASE_URL": f"sqlite:///{tmp / 'prod.db'}",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=PROJECT_ROOT, env=env, check=True)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=PROJECT_ROOT,
        env={**env, "STATIC_ROOT": str(tmp / "static")},
        check=True,
    )
    log = open(tmp / "gunicorn.log", "w")
    process = subprocess.Popen(
        [str(GUNICORN), "clinic_auth.wsgi", "--workers", "3", "--bind", f"127.0.0.1:{port}"],
        cwd=PROJECT_ROOT,
        env={**env, "STATIC_ROOT": str(tmp / "static")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/accounts/login/", timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    else:
        process.terminate()
        pytest.fail("gunicorn did not start: " + (tmp / "gunicorn.log").read_text())
    yield base, process
    process.terminate()
    process.wait(timeout=10)
    log.close()


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
