"""Two app nodes behind the shipped HAProxy config, on one fresh PostgreSQL database, on loopback.

Each node is the shipped gunicorn (gunicorn.conf.py, its own process group, its own port) with the
production settings (HTTPS=1, TRUSTED_PROXY_COUNT=1, a connection pool); HAProxy terminates TLS
with a certificate made here. deploy/haproxy.cfg is used as shipped: only what must differ on a
test machine is substituted (each substitution asserted), and two lines are added so a test can
see which node answered and ask for one: `X-Served-By` and `X-Test-Node`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from tests.cluster.harness import NODES, ClusterBrowser, free_port, wait_for
from tests.concurrency.harness import GUNICORN, POSTGRES_SERVER, PROJECT_ROOT, django_shell
from tests.conftest import PASSWORD

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SHIPPED = PROJECT_ROOT / "deploy" / "haproxy.cfg"
ENROLLED = ["alice", "locker-one", "locker-two", "lostphone", "leaver", "everywhere", "cadmin", *[f"twin{n}" for n in range(10)]]
NOT_ENROLLED = ["pwtarget", "newcomer", *[f"load{n}" for n in range(10)]]


@dataclass
class Node:
    name: str
    port: int
    env: dict
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(GUNICORN), "-c", "gunicorn.conf.py", "clinic_auth.wsgi"],
            cwd=PROJECT_ROOT,
            env={**self.env, "BIND": f"127.0.0.1:{self.port}"},
            stdout=open(self.log, "a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as a machine would be lost
        )

    def kill(self) -> None:
        """SIGKILL to the master and every worker at once, as a power cut: nothing gets to clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@dataclass
class Cluster:
    base: str
    ssl_context: object
    env: dict
    nodes: dict[str, Node]
    haproxy_log: Path
    keys: dict = field(default_factory=dict)  # username -> raw TOTP key
    ids: dict = field(default_factory=dict)  # username -> pk
    clinics: dict = field(default_factory=dict)  # name -> pk

    def browser(self) -> ClusterBrowser:
        return ClusterBrowser(self.base, self.ssl_context)

    def shell(self, code: str):
        return django_shell(self.env, code)


def substituted(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"deploy/haproxy.cfg no longer has {old!r}: update tests/cluster/conftest.py"
        text = text.replace(old, new)
    return text


def make_certificate(folder: Path) -> Path:
    key, cert, both = folder / "key.pem", folder / "cert.pem", folder / "both.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    return both


def seed(env: dict) -> dict:
    return django_shell(
        env,
        f"""
        from base64 import b32encode
        from clinics.models import Clinic
        from clinic_auth.twofactor.models import EncryptedTOTPDevice
        open_clinic = Clinic.objects.create(name="Open Clinic")
        strict_clinic = Clinic.objects.create(name="Strict Clinic")
        keys, ids = {{}}, {{}}
        for name in {ENROLLED + NOT_ENROLLED!r}:
            clinic = strict_clinic if name in ("cadmin", "newcomer", "leaver") else open_clinic
            role = User.Role.CLINIC_ADMIN if name == "cadmin" else User.Role.STAFF
            user = User(username=name, clinic=clinic, role=role, email=name + "@example.com", first_name=name.title())
            user.set_password({PASSWORD!r})
            user.save()
            ids[name] = user.pk
            if name in {ENROLLED!r}:
                device = EncryptedTOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
                keys[name] = b32encode(device.bin_key).decode()
        print(json.dumps({{"keys": keys, "ids": ids, "clinics": {{"open": open_clinic.pk, "strict": strict_clinic.pk}}}}))
        """,
    )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    if not Path(HAPROXY).exists():
        pytest.fail("haproxy is not installed: apt-get install haproxy (.ci/run does)")
    import base64
    import ssl

    tmp = tmp_path_factory.mktemp("cluster")
    db_name = f"clinicauth_cluster_{os.getpid()}"
    admin = psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=5)
    admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{db_name}"')
    front_port = free_port()
    site = f"https://localhost:{front_port}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DATABASE_URL": f"{POSTGRES_SERVER}/{db_name}",
        "DEBUG": "0",
        "HTTPS": "1",
        "SITE_URL": site,
        # The same secrets on every node, as in production: one site.
        "SECRET_KEY": "cluster-test-only-" + "k" * 50,
        "TOTP_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "TRUSTED_PROXY_COUNT": "1",
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "DB_CONN_MAX_AGE": "0",
        "DB_POOL_MAX_SIZE": "4",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "8",
        "OTP_THROTTLE_FACTOR": "0",  # no growing delay; the lockout after 10 wrong codes stays
        "EMAIL_QUEUE": "off",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "WARNING",
        "GUNICORN_ACCESS_LOG": os.devnull,
        "PYTHONWARNINGS": "ignore:No directory at",
    }
    nodes = {name: Node(name, free_port(), env, tmp / f"{name}.log") for name in NODES}
    haproxy = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=PROJECT_ROOT, env=env, check=True)
        seeded = seed(env)
        for node in nodes.values():
            node.start()
        certificate = make_certificate(tmp)
        config = substituted(
            SHIPPED.read_text(),
            {
                "log stdout format raw local0": "log stdout format raw local0 info",
                "bind :443 ssl crt /etc/haproxy/certs/clinic.example.org.pem": f"bind 127.0.0.1:{front_port} ssl crt {certificate}",
                "    bind :80\n": f"    bind 127.0.0.1:{free_port()}\n",
                "hdr Host clinic.example.org": f"hdr Host localhost:{front_port}",
                "server node1 10.0.0.11:8000 check": f"server node1 127.0.0.1:{nodes['node1'].port} check",
                "server node2 10.0.0.12:8000 check": f"server node2 127.0.0.1:{nodes['node2'].port} check",
                "    balance roundrobin\n": (
                    "    balance roundrobin\n"
                    "    http-response set-header X-Served-By %[srv_name]\n"
                    "    use-server node1 if { req.hdr(X-Test-Node) -m str node1 }\n"
                    "    use-server node2 if { req.hdr(X-Test-Node) -m str node2 }\n"
                ),
            },
        )
        (tmp / "haproxy.cfg").write_text(config)
        subprocess.run([HAPROXY, "-c", "-q", "-f", str(tmp / "haproxy.cfg")], check=True)
        haproxy_log = tmp / "haproxy.log"
        haproxy = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(tmp / "haproxy.cfg")], stdout=open(haproxy_log, "w"), stderr=subprocess.STDOUT
        )
        context = ssl.create_default_context(cafile=str(tmp / "cert.pem"))
        cluster = Cluster(base=site, ssl_context=context, env=env, nodes=nodes, haproxy_log=haproxy_log)
        cluster.keys = {name: base64.b32decode(key) for name, key in seeded["keys"].items()}
        cluster.ids, cluster.clinics = seeded["ids"], seeded["clinics"]
        probe = cluster.browser()
        for name in NODES:  # both nodes up and checked healthy by HAProxy
            wait_for(lambda n=name: probe.request("/healthz", node=n).served_by == n, seconds=60, what=f"{name} serving")
        yield cluster
    finally:
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(timeout=10)
        for node in nodes.values():
            node.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()
        for node in nodes.values():
            log = node.log.read_text() if node.log.exists() else ""
            assert "Internal Server Error" not in log, log
