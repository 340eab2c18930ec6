"""Shared pieces of the benchmark that need no Django: machine info, statistics,
gunicorn servers, and a small cookie-keeping HTTP client for loopback load.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/clinicauth_bench")
SQLITE_FILE = Path(os.environ.get("BENCH_SQLITE_FILE", str(RESULTS / "bench.sqlite3")))
SQLITE_URL = f"sqlite:///{SQLITE_FILE}"
PASSWORD = "clinicauth-bench"

# Settings every process of the benchmark runs with: production-like, no console email.
BASE_ENV = {
    "DEBUG": "0",
    "LOG_LEVEL": "WARNING",
    "EMAIL_QUEUE": "off",
    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    "PYTHONWARNINGS": "ignore:No directory at",  # WhiteNoise: STATIC_ROOT is not collected for the bench
}


# --- machine ----------------------------------------------------------------


def machine_info() -> dict:
    cpu_model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": _sqlite_version(),
        "postgresql": _pg_version(),
        "wrk": _command_version(["wrk", "-v"]),
        "speed": machine_speed(),
    }


def machine_speed(repeats: int = 5) -> dict:
    """Two fixed workloads, median of `repeats`, so runs on different (virtual) machines can be
    compared: a pure-Python loop (what a page view's CPU scales with) and one Argon2 check with
    Django's parameters (what a sign-in costs)."""
    from argon2 import PasswordHasher
    from django.contrib.auth.hashers import Argon2PasswordHasher

    def median_seconds(work) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2]

    django_params = Argon2PasswordHasher
    argon2 = PasswordHasher(time_cost=django_params.time_cost, memory_cost=django_params.memory_cost,
                            parallelism=django_params.parallelism)
    return {
        "python_loop_ms": round(median_seconds(lambda: sum(range(1_000_000))) * 1000, 1),
        "argon2_check_ms": round(median_seconds(lambda: argon2.hash("bench")) * 1000, 1),
    }


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def _pg_version() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), connect_timeout=3) as conn:
            return conn.execute("show server_version").fetchone()[0]
    except Exception as exc:  # reported, not fatal: SQLite parts still run
        return f"unavailable ({exc.__class__.__name__})"


def _command_version(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0].split(" [")[0] if text else None


def system_cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, to show how loaded it was during a measurement."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(busy / total, 2) if total else 0.0


# --- statistics -------------------------------------------------------------


def median_ms(seconds: list[float]) -> float:
    return round(statistics.median(seconds) * 1000, 2)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation), the way load tools report p99."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(round(pct / 100 * len(ordered) + 0.5 - 1e-9)))
    return ordered[min(rank, len(ordered)) - 1]


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


# --- PostgreSQL database for the run ------------------------------------------


def recreate_pg_database() -> None:
    import psycopg

    name = PG_URL.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_pg_database() -> None:
    import psycopg

    name = PG_URL.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- subprocesses -------------------------------------------------------------


def run_step(module: str, *args: str, env: dict | None = None, timeout: float = 600) -> dict:
    """Run `python -m module args --out FILE` and return the JSON it wrote."""
    out = RESULTS / f".{module.rsplit('.', 1)[1]}-{os.getpid()}-{time.monotonic_ns()}.json"
    full_env = {**os.environ, **BASE_ENV, **(env or {})}
    subprocess.run([PYTHON, "-m", module, *args, "--out", str(out)], cwd=ROOT, env=full_env, check=True, timeout=timeout)
    try:
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def write_json(path: str, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=2, default=str))


# --- gunicorn -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorns(specs: dict[str, dict]):
    """Several `gunicorn(**spec)` started side by side (each waits until it serves, which is
    mostly waiting); yields {name: Server} in the order given, and stops them all at the end."""
    with ExitStack() as stack:
        managers = {name: gunicorn(**spec) for name, spec in specs.items()}
        with ThreadPoolExecutor(len(managers)) as pool:
            started = {name: pool.submit(manager.__enter__) for name, manager in managers.items()}
        servers, failure = {}, None
        for name, future in started.items():
            if future.exception() is None:
                servers[name] = future.result()
                stack.push(managers[name].__exit__)
            else:
                failure = failure or future.exception()
        if failure is not None:
            raise failure
        yield servers


class Server:
    """A running gunicorn: its base URL, and the CPU time its processes have used."""

    def __init__(self, url: str, pid: int):
        self.url = url
        self.pid = pid

    def _processes(self) -> dict[int, Path]:
        """The master and every process below it (workers, and each worker's password-check helper)."""
        parents = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parents[int(stat.parent.name)] = (int(stat.read_text().rsplit(")", 1)[1].split()[1]), stat.parent)
            except (OSError, ValueError, IndexError):
                continue
        family = {self.pid}
        grew = True
        while grew:
            below = {pid for pid, (ppid, _) in parents.items() if ppid in family} - family
            family |= below
            grew = bool(below)
        return {pid: parents[pid][1] for pid in family if pid in parents}

    def cpu_seconds(self) -> float:
        """User + system CPU of the master and everything below it, from /proc (immune to other load)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for directory in self._processes().values():
            try:
                fields = (directory / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def memory_mb(self) -> dict:
        """Resident memory of the master, its workers and their helpers: RSS summed (counts shared pages once
        per process) and PSS summed (shares split between processes: what they really take together)."""
        rss = pss = 0
        processes = 0
        for directory in self._processes().values():
            try:
                rollup = (directory / "smaps_rollup").read_text()
            except OSError:
                continue
            processes += 1
            for line in rollup.splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        return {"processes": processes, "rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1)}


@contextmanager
def gunicorn(
    *, workers: int | None = None, env: dict, settings: str = "clinic_auth.settings", port: int | None = None,
    shipped_config: bool = False, wsgi: str = "clinic_auth.wsgi:application", probe: str = "/accounts/login/",
):
    """A gunicorn on loopback, stopped (by its own pid) when the block ends; yields a Server.

    shipped_config runs the production command (`gunicorn -c gunicorn.conf.py`) with its workers,
    worker class and threads (WEB_CONCURRENCY in env overrides the workers as in production);
    otherwise `workers` sync workers.
    """
    port = port or free_port()
    # gunicorn reads ./gunicorn.conf.py by itself: keep its access log off the bench's output.
    full_env = {**os.environ, **BASE_ENV, "DJANGO_SETTINGS_MODULE": settings, "GUNICORN_ACCESS_LOG": os.devnull, **env}
    if shipped_config:
        full_env.update(BIND=f"127.0.0.1:{port}", GUNICORN_ACCESS_LOG=os.devnull)
        if workers:
            full_env["WEB_CONCURRENCY"] = str(workers)
        cmd = [GUNICORN, "-c", str(ROOT / "gunicorn.conf.py"), wsgi, "--log-level", "warning"]
    else:
        cmd = [
            GUNICORN, wsgi,
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers or 2),
            "--worker-class", "sync",
            "--timeout", "60",
            "--log-level", "warning",
            # gunicorn.conf.py recycles workers every ~2,000 requests; a recycled worker's CPU time
            # vanishes from /proc and a restart stalls wrk, so the measured servers never recycle.
            "--max-requests", "0",
        ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env)
    try:
        _wait_until_serving(port, proc, probe)
        yield Server(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_serving(port: int, proc: subprocess.Popen, probe: str = "/accounts/login/", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", probe)
            if conn.getresponse().status in (200, 302):
                conn.close()
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn on port {port} did not answer within {timeout} s")


# --- a browser-ish HTTP session -------------------------------------------------

CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes, seconds: float):
        self.status = status
        self.headers = headers
        self.body = body
        self.seconds = seconds

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def csrf_token(self) -> str:
        match = CSRF_INPUT.search(self.body)
        if not match:
            raise AssertionError(f"no CSRF token in a {self.status} response")
        return match.group(1).decode()


class Session:
    """Cookies, CSRF and timing over http.client; one per simulated person."""

    def __init__(self, base_url: str, *, forwarded_for: str | None = None, timeout: float = 30):
        host_port = base_url.split("://", 1)[1]
        self.host, port = host_port.split(":")
        self.port = int(port)
        self.cookies: dict[str, str] = {}
        self.forwarded_for = forwarded_for
        self.timeout = timeout
        self.csrf_token = ""  # from the last form seen, as a browser would submit it

    def request(self, method: str, path: str, form: dict | None = None) -> Response:
        from urllib.parse import urlencode

        headers = {"Host": f"{self.host}:{self.port}", "Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.forwarded_for:
            headers["X-Forwarded-For"] = self.forwarded_for
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://{self.host}:{self.port}{path}"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            raw = conn.getresponse()
            data = raw.read()
        finally:
            conn.close()
        seconds = time.perf_counter() - started
        match = CSRF_INPUT.search(data)
        if match:
            self.csrf_token = match.group(1).decode()
        for header in raw.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value in ('""', "") or "Max-Age=0" in header:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        return Response(raw.status, raw.headers, data, seconds)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, form: dict) -> Response:
        return self.request("POST", path, {**form, "csrfmiddlewaretoken": self.csrf_token})


class FlowError(AssertionError):
    """A response that a real person would see as a failure."""


def expect(response: Response, status: int, what: str) -> Response:
    if response.status != status:
        raise FlowError(f"{what}: HTTP {response.status}, expected {status} (Location {response.location!r})")
    return response


def login_over_http(session: Session, username: str, password: str, code_for_now, record=None) -> None:
    """Log in like a browser: login page, password, redirect to the challenge, code, home.

    code_for_now() is called only after the password step, so the code is
    current; record(kind, response) sees every response (for latency stats).
    """
    record = record or (lambda kind, response: None)
    started = time.monotonic()

    def step(kind, response):
        record(kind, response)
        return response

    expect(step("login_page", session.get("/accounts/login/")), 200, "login page")
    response = step("password", session.post("/accounts/login/", {"username": username, "password": password}))
    expect(response, 302, f"password step for {username}")
    response = step("redirect", session.get(response.location))  # /home/ sends an unverified session on
    expect(response, 302, "home before the code")
    if not response.location.startswith("/accounts/two-factor/"):
        raise FlowError(f"expected the challenge, got {response.location!r}")
    challenge = response.location
    expect(step("challenge_page", session.get(challenge)), 200, "challenge page")
    response = step("code", session.post(challenge, {"code": code_for_now(), "next": "/home/"}))
    expect(response, 302, f"code step for {username}")
    expect(step("page", session.get(response.location)), 200, "home after the code")
    record("sign_in", Elapsed(time.monotonic() - started))  # the whole sign-in, login page to Home


class Elapsed:
    """A stand-in response for a span of several requests (Stats reads only .seconds)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
