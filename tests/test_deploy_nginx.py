"""The shipped reverse-proxy example (deploy/nginx/clinicauth.conf) in front of the shipped
gunicorn.conf.py, on loopback: a real sign-in with password and code over HTTPS through nginx.

The config is used as shipped; only what must differ on a test machine is substituted (ports,
server name, certificate, static folder, upstream port), and each substitution is asserted to
have happened, so a change of the file's shape fails here instead of going untested.
"""

from __future__ import annotations

import contextlib
import functools
import grp
import http.client
import http.cookiejar
import json
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pyotp
import pytest
from cryptography.fernet import Fernet

from tests.softkey import SoftKey
from tests.test_production_serving import PROJECT_ROOT, free_port, start_gunicorn

NGINX = Path("/usr/sbin/nginx")
OPENSSL = shutil.which("openssl")
SHIPPED = PROJECT_ROOT / "deploy" / "nginx" / "clinicauth.conf"
DEMO_PASSWORD = "clinicauth-demo"  # users/management/commands/seed_demo.py
SESSION_COOKIE = "__Host-clinicauth_session"  # settings with HTTPS=1
CSRF_COOKIE = "__Host-clinicauth_csrf"

pytestmark = pytest.mark.skipif(
    not NGINX.is_file() or OPENSSL is None,
    reason="needs Debian's nginx (/usr/sbin/nginx) and openssl: apt-get install nginx openssl",
)

# A code for the demo account, whose device the test adds to the database gunicorn serves.
MAKE_DEVICE = """
from base64 import b32encode
from clinic_auth.twofactor.models import EncryptedTOTPDevice
from users.models import User
user = User.objects.get(username="demo-staff")
device = EncryptedTOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
print(b32encode(device.bin_key).decode())
"""


def can_bind(address: str, family: int = socket.AF_INET) -> bool:
    try:
        with socket.socket(family) as sock:
            sock.bind((address, 0))
        return True
    except OSError:
        return False


def substitute(text: str, old: str, new: str) -> str:
    """Replace every `old`; the shipped file must contain it, or its shape has changed."""
    assert old in text, f"deploy/nginx/clinicauth.conf no longer contains {old!r}"
    return text.replace(old, new)


def site_config(tmp: Path, *, http_port: int, https_port: int, app_port: int, static_root: Path) -> Path:
    """The shipped server blocks with this machine's ports, name, certificate and folders."""
    conf = SHIPPED.read_text()
    ipv6 = can_bind("::1", socket.AF_INET6)
    conf = substitute(conf, "listen 80;", f"listen 127.0.0.1:{http_port};")
    conf = substitute(conf, "listen [::]:80;", f"listen [::1]:{http_port};" if ipv6 else "")
    conf = substitute(conf, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    conf = substitute(conf, "listen [::]:443 ssl http2;", f"listen [::1]:{https_port} ssl http2;" if ipv6 else "")
    conf = substitute(conf, "server_name clinic.example.org;", "server_name localhost;")
    conf = substitute(conf, "/etc/ssl/certs/clinicauth.crt;", f"{tmp / 'cert.pem'};")
    conf = substitute(conf, "/etc/ssl/private/clinicauth.key;", f"{tmp / 'key.pem'};")
    conf = substitute(conf, "alias /srv/clinicauth/staticfiles/;", f"alias {static_root}/;")
    conf = substitute(conf, "proxy_pass http://127.0.0.1:8000;", f"proxy_pass http://127.0.0.1:{app_port};")
    # Nothing of the production machine is left in a directive (the comments may name it).
    directives = re.sub(r"#.*", "", conf)
    assert not re.search(r"clinic\.example\.org|/etc/ssl|/srv/clinicauth|:8000\b|listen (80|443)\b", directives), conf
    site = tmp / "clinicauth.conf"
    site.write_text(conf)
    return site


def main_config(tmp: Path, site: Path) -> Path:
    """A minimal nginx.conf around the site, as Debian's includes sites-enabled/ in http {}; every
    path nginx writes is under tmp, and workers run as this user (pytest's tmp is 0700)."""
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp / "nginx.conf").write_text(
        f"""daemon off;
{"user " + user + " " + group + ";" if os.getuid() == 0 else ""}
worker_processes 1;
pid {tmp / 'nginx.pid'};
error_log {tmp / 'error.log'} info;
events {{}}
http {{
    include /etc/nginx/mime.types;
    # The request id the app logs (X-Request-ID), to find nginx's line for it.
    log_format ids '$remote_addr $request_id "$request" $status';
    access_log {tmp / 'access.log'} ids;
{temp_paths}
    include {site};
}}
"""
    )
    return tmp / "nginx.conf"


def make_certificate(tmp: Path) -> None:
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-days", "1",
         "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
        check=True, capture_output=True,
    )


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + 15
    while time.time() < deadline:
        if process.poll() is not None:
            pytest.fail("nginx exited: " + log.read_text())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail("nginx did not listen: " + log.read_text())


class HTTPSFrom(urllib.request.HTTPSHandler):
    """HTTPS from a chosen loopback address, so the client's address differs from nginx's own."""

    def __init__(self, context: ssl.SSLContext, source: str):
        super().__init__(context=context)
        self.source = source

    def https_open(self, req):
        connection = functools.partial(http.client.HTTPSConnection, source_address=(self.source, 0))
        return self.do_open(connection, req, context=self._context)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """Cookies, the test certificate trusted (and verified), redirects shown, not followed."""

    def __init__(self, base: str, context: ssl.SSLContext, source: str, headers: dict | None = None):
        self.base = base
        self.headers = headers or {}
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            HTTPSFrom(context, source), urllib.request.HTTPCookieProcessor(self.cookies), NoRedirect
        )

    def request(self, path: str, data: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(self.base + path, data=data, headers={**self.headers, **(headers or {})})
        try:
            response = self.opener.open(request, timeout=15)
        except urllib.error.HTTPError as error:
            response = error
        response.text = response.read().decode()
        return response

    def follow(self, response, hops: int = 3):
        """The page a redirect ends at, in a few hops (a proxy that hides HTTPS loops here)."""
        for _ in range(hops):
            if response.status not in (301, 302):
                assert response.status == 200, response.text
                return response
            location = response.headers["Location"]
            assert location.startswith("/"), location  # on this site, over this scheme
            response = self.get(location)
        pytest.fail(f"more than {hops} redirects, the last to {response.headers['Location']}")

    def get(self, path: str, **kwargs):
        return self.request(path, **kwargs)

    def post_form(self, path: str, fields: dict):
        return self.request(path, urllib.parse.urlencode(fields).encode(), {"Origin": self.base})

    def post_json(self, path: str, payload: dict, csrf_token: str):
        headers = {"Origin": self.base, "Content-Type": "application/json", "X-CSRFToken": csrf_token}
        return self.request(path, json.dumps(payload).encode(), headers)


def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def set_cookies(response) -> list[str]:
    return response.headers.get_all("Set-Cookie") or []


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """gunicorn (gunicorn.conf.py, production settings) behind nginx (the shipped config)."""
    tmp = tmp_path_factory.mktemp("deploy")
    http_port, https_port = free_port(), free_port()
    site_url = f"https://localhost:{https_port}"
    env = {
        "DEBUG": "0",
        "HTTPS": "1",
        "SITE_URL": site_url,
        "ALLOWED_HOSTS": "localhost",  # SITE_URL's host: the default with HTTPS=1
        "TRUSTED_PROXY_COUNT": "1",
        "SECRET_KEY": "test-only-deploy-" + "k" * 50,
        "TOTP_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{tmp / 'prod.db'}",
        "STATIC_ROOT": str(tmp / "static"),
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "WARNING",
    }
    # Migrates the database and collects the static files first (tests/test_production_serving.py).
    with contextlib.ExitStack() as running:
        app, _, stop_app = start_gunicorn(tmp, **env)
        running.callback(stop_app)
        manage = functools.partial(
            subprocess.run, cwd=PROJECT_ROOT, env={**os.environ, **env}, check=True, capture_output=True, text=True
        )
        manage([sys.executable, "manage.py", "seed_demo"])
        secret = manage([sys.executable, "manage.py", "shell", "-c", MAKE_DEVICE]).stdout.strip().splitlines()[-1]

        make_certificate(tmp)
        app_port = urllib.parse.urlsplit(app).port
        site = site_config(tmp, http_port=http_port, https_port=https_port, app_port=app_port, static_root=tmp / "static")
        nginx = [str(NGINX), "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(main_config(tmp, site))]
        checked = subprocess.run([*nginx, "-t"], check=False, capture_output=True, text=True)
        assert checked.returncode == 0 and "test is successful" in checked.stderr, checked.stderr
        process = subprocess.Popen(nginx, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        running.callback(process.wait, timeout=10)
        running.callback(process.terminate)
        wait_for_port(https_port, process, tmp / "error.log")
        yield {
            "base": site_url, "http_port": http_port, "https_port": https_port, "tmp": tmp, "secret": secret,
            "context": ssl.create_default_context(cafile=str(tmp / "cert.pem")),
        }


def test_plain_http_is_sent_to_https(deployed):
    connection = http.client.HTTPConnection("127.0.0.1", deployed["http_port"], timeout=10)
    connection.request("GET", "/accounts/login/?next=/home/", headers={"Host": "evil.example"})
    response = connection.getresponse()
    assert response.status == 301
    # To the configured name, whatever Host the client sent (443: the port the shipped file uses).
    assert response.getheader("Location") == "https://localhost/accounts/login/?next=/home/"


def tls_handshake(port: int, cafile: Path, *, version: ssl.TLSVersion | None = None, alpn: list[str] | None = None):
    context = ssl.create_default_context(cafile=str(cafile))
    if version:
        context.minimum_version = context.maximum_version = version
    if alpn:
        context.set_alpn_protocols(alpn)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version(), tls.cipher()[0], tls.selected_alpn_protocol()


def test_tls_offers_http2_and_modern_protocols_only(deployed):
    port, cafile = deployed["https_port"], deployed["tmp"] / "cert.pem"
    assert tls_handshake(port, cafile, alpn=["h2", "http/1.1"])[2] == "h2"
    assert tls_handshake(port, cafile, version=ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"
    version, cipher, _ = tls_handshake(port, cafile, version=ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2" and cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher
    # Older versions: this machine's OpenSSL refuses them either way, so the shipped line itself.
    assert re.search(r"^\s*ssl_protocols TLSv1\.2 TLSv1\.3;$", SHIPPED.read_text(), re.MULTILINE)


def test_nginx_serves_static_files_with_cache_headers(deployed):
    browser = Browser(deployed["base"], deployed["context"], "127.0.0.1")
    response = browser.get("/static/css/app.css")
    assert response.status == 200
    assert response.text == (PROJECT_ROOT / "static" / "css" / "app.css").read_text()
    assert response.headers["Content-Type"].startswith("text/css")
    # nginx's `expires`, not WhiteNoise's "max-age=60, public": the file came from the alias.
    assert response.headers["Cache-Control"] == "max-age=300"
    assert "Expires" in response.headers and response.headers["X-Content-Type-Options"] == "nosniff"
    assert "immutable" not in response.headers["Cache-Control"]  # the names carry no content hash


def test_the_app_logs_the_request_id_nginx_gives(deployed):
    headers = {"X-Request-ID": "chosen-by-the-client"}  # nginx replaces it
    browser = Browser(deployed["base"], deployed["context"], "127.0.0.1", headers=headers)
    response = browser.get("/accounts/login/?id-check")
    assert response.status == 200
    given = response.headers["X-Request-ID"]  # the id the app's log lines carry
    assert re.fullmatch(r"[0-9a-f]{32}", given), given
    access_log = deployed["tmp"] / "access.log"
    deadline = time.time() + 5
    while "id-check" not in access_log.read_text() and time.time() < deadline:
        time.sleep(0.1)
    assert f'{given} "GET /accounts/login/?id-check HTTP/1.1" 200' in access_log.read_text()


def test_sign_in_with_password_code_and_passkey_through_nginx(deployed):
    # The client's own address, other than nginx's 127.0.0.1, to see which one the app records.
    client_address = "127.0.0.2" if can_bind("127.0.0.2") else "127.0.0.1"
    base = deployed["base"]
    # Every request also claims another address: nginx keeps the claim, the app must not believe it.
    browser = Browser(base, deployed["context"], client_address, headers={"X-Forwarded-For": "203.0.113.9"})

    login = browser.get("/accounts/login/")
    assert login.status == 200, login.text  # served as HTTPS: no redirect to https:// again
    assert login.headers["Strict-Transport-Security"].startswith("max-age=")
    (csrf_set,) = [c for c in set_cookies(login) if c.startswith(CSRF_COOKIE + "=")]
    assert "Secure" in csrf_set and "Path=/" in csrf_set and "Domain" not in csrf_set

    fields = {"csrfmiddlewaretoken": csrf_token(login.text), "username": "demo-staff", "password": DEMO_PASSWORD}
    password = browser.post_form("/accounts/login/", fields)
    assert password.status == 302, password.text
    (session_set,) = [c for c in set_cookies(password) if c.startswith(SESSION_COOKIE + "=")]
    assert "Secure" in session_set and "HttpOnly" in session_set

    challenge = browser.follow(password)
    assert challenge.url.startswith(base + "/accounts/two-factor/"), challenge.url
    assert 'name="code"' in challenge.text, challenge.text
    fields = {"csrfmiddlewaretoken": csrf_token(challenge.text), "code": pyotp.TOTP(deployed["secret"]).now()}
    code = browser.post_form(challenge.url.removeprefix(base), fields)
    assert code.status == 302, code.text
    home = browser.follow(code)
    assert home.url == base + "/home/", home.url
    assert 'action="/accounts/logout/"' in home.text  # signed in

    # Passkeys: the relying party and the origin follow SITE_URL, the address nginx serves.
    token = csrf_token(home.text)
    begin = browser.post_json("/accounts/passkeys/registration/begin/", {}, token)
    assert begin.status == 200, begin.text
    options = json.loads(begin.text)
    assert options["rp"]["id"] == "localhost"
    answer = SoftKey().register(options, origin=base)
    added = browser.post_json("/accounts/passkeys/registration/complete/", answer, token)
    assert added.status == 200, added.text
    assert json.loads(added.text)["redirect_url"] == "/profile/"
    # The same ceremony from another origin (a look-alike site relaying it) is refused.
    options = json.loads(browser.post_json("/accounts/passkeys/registration/begin/", {}, token).text)
    elsewhere = SoftKey().register(options, origin="https://localhost:1")
    refused = browser.post_json("/accounts/passkeys/registration/complete/", elsewhere, token)
    assert refused.status == 422 and "invalid_registration_response" in refused.text, refused.text

    profile = browser.get("/profile/")
    assert profile.status == 200
    assert profile.text.count("<strong>Passkey</strong>") == 1
    # The address nginx saw, from X-Forwarded-For, not nginx's own (REMOTE_ADDR) nor the client's claim.
    assert f"IP address {client_address} " in profile.text
    assert "203.0.113.9" not in profile.text


# --- the rest of deploy/: systemd units and the environment file ---------------------------


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (Debian's systemd)")
def test_systemd_units_have_no_unknown_or_malformed_settings(tmp_path):
    """systemd ignores a misspelt or malformed line with a warning only: here a warning fails."""
    units = sorted((PROJECT_ROOT / "deploy" / "systemd").iterdir())
    assert {unit.name for unit in units} == {
        "clinicauth.service", "clinicauth-mailer.service", "clinicauth-cleanup.service", "clinicauth-cleanup.timer",
    }
    venv_bin = Path(sys.executable).parent
    for unit in units:
        text = unit.read_text()
        if unit.suffix == ".service":
            text = substitute_in(unit.name, text, "/srv/clinicauth/.venv/bin/", f"{venv_bin}/")
        (tmp_path / unit.name).write_text(text)
    verified = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / unit.name) for unit in units)],
        check=False, capture_output=True, text=True,
    )
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr


def substitute_in(name: str, text: str, old: str, new: str) -> str:
    assert old in text, f"{name} no longer contains {old!r}"
    return text.replace(old, new)


def test_env_example_names_only_variables_the_app_reads():
    """Every variable in deploy/env.example, set or commented out, is one settings.py or
    gunicorn.conf.py reads: a misspelt name there would be silently ignored."""
    example = (PROJECT_ROOT / "deploy" / "env.example").read_text()
    names = re.findall(r"^#?([A-Z][A-Z0-9_]*)=", example, re.MULTILINE)
    read = (PROJECT_ROOT / "clinic_auth" / "settings.py").read_text() + (PROJECT_ROOT / "gunicorn.conf.py").read_text()
    assert {"HTTPS", "SITE_URL", "SECRET_KEY", "TOTP_ENCRYPTION_KEYS", "DATABASE_URL", "TRUSTED_PROXY_COUNT"} <= set(names)
    assert [name for name in names if f'"{name}"' not in read] == []
    assert "BIND" not in names  # clinicauth.service sets it: the file would override it
