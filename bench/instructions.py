"""Instructions per verified request, counted by callgrind: the same figure on a busy machine as on a quiet one.

Wall-clock and CPU-time figures move with whatever else the machine does (parts 1 and 4); the count of
instructions a request executes does not. Each measurement runs `python -m bench.instructions --child`
under `valgrind --tool=callgrind`, which logs in one user through the real login and code pages and then
serves the same page N times in-process (Django's test Client); only those N requests are counted, as
they run inside one call of functools.reduce (callgrind's --toggle-collect, which flips counting on entry
and exit: a reduce() inside a measured request would hide its own work; none runs on these pages). Measured, in one run:
  (a) Home with this app's settings, (b) Home without TwoFactorMiddleware (bench.settings_no2fa, as in
  part 1): (b)/(a) is what enforcement costs in instructions; and My Profile with this app's settings.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import common, inprocess

USERNAMES = {
    "home_app": "bench-c002-u000010",
    "home_no_2fa": "bench-c002-u000012",
    "profile_app": "bench-c002-u000014",
    "protected_page": "bench-c002-u000016",
    "code_post": "bench-c002-u000018",
}
# What each measure serves: a page (GET, N times), or CODE_POST (the sign-in's code step, N sign-ins).
CODE_POST = "code-post"
MEASURES = {
    "home_app": ("clinic_auth.settings", "/home/"),
    "home_no_2fa": ("bench.settings_no2fa", "/home/"),
    "profile_app": ("clinic_auth.settings", "/profile/"),
    # The peers' one-line page (part 6) behind ClinicAuth's whole middleware stack: no template.
    "protected_page": ("bench.peers.clinicauth_site", "/protected/"),
    "code_post": ("clinic_auth.settings", CODE_POST),
}
TOGGLE = "functools_reduce"


def child(username: str, path: str, requests: int) -> None:
    """Sign in, then serve `path` `requests` times inside functools.reduce (what callgrind counts)."""
    import functools

    inprocess.setup_django()
    from users.models import UserSession

    UserSession.objects.filter(user__username=username).delete()  # My Profile lists this user's browsers
    if path == CODE_POST:
        code_posts(username, requests)
        return
    client = inprocess.verified_client(username, common.PASSWORD)
    for _ in range(5):  # warm caches (templates, compiled queries, URL lookups) outside the count
        _expect_ok(client.get(path), path)

    def one(served, _):
        _expect_ok(client.get(path), path)
        return served + 1

    served = functools.reduce(one, range(requests), 0)
    print(f"SERVED {served}")


def code_posts(username: str, requests: int) -> None:
    """N sign-ins; only each one's code POST runs inside functools.reduce (what callgrind counts)."""
    import functools

    from django.test import Client
    from django.urls import reverse

    from users.models import User

    from django.test.utils import override_settings

    # The password step is not counted; a cheap hash keeps it from taking minutes under valgrind.
    override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]).enable()
    user = User.objects.get(username=username)
    user.set_password(common.PASSWORD)
    user.save(update_fields=["password"])
    device = inprocess.device_of(user)

    def sign_in(counted: bool) -> None:
        inprocess.allow_fresh_code(device)
        client = Client()
        response = client.post(reverse("login"), {"username": username, "password": common.PASSWORD})
        assert response.status_code == 302, response.status_code
        data = {"code": inprocess.code_for(device)}
        post = lambda served, _: served + (client.post(reverse("two_factor_challenge"), data).status_code == 302)
        served = functools.reduce(post, range(1), 0) if counted else post(0, None)
        assert served == 1, "code refused"

    for _ in range(3):  # warm caches outside the count
        sign_in(counted=False)
    for _ in range(requests):
        sign_in(counted=True)
    print(f"SERVED {requests}")


def _expect_ok(response, path) -> None:
    if response.status_code != 200:
        raise SystemExit(f"GET {path}: HTTP {response.status_code}")


def measure(name: str, *, requests: int, db_url: str, use_valgrind: bool) -> dict:
    settings, path = MEASURES[name]
    env = {**os.environ, **common.BASE_ENV, "DJANGO_SETTINGS_MODULE": settings, "DATABASE_URL": db_url,
           "DB_CONN_MAX_AGE": "60", "PYTHONPATH": str(common.ROOT)}
    command = [sys.executable, "-m", "bench.instructions", "--child", USERNAMES[name], path, str(requests)]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        if use_valgrind:
            command = ["valgrind", "--tool=callgrind", "--collect-atstart=no", f"--toggle-collect={TOGGLE}",
                       f"--callgrind-out-file={out}", *command]
        run = subprocess.run(command, cwd=common.ROOT, env=env, capture_output=True, text=True, timeout=1200)
        if run.returncode != 0 or f"SERVED {requests}" not in run.stdout:
            raise RuntimeError(f"{name}: {run.stdout[-2000:]}{run.stderr[-2000:]}")
        if not use_valgrind:
            return {"settings": settings, "path": path, "requests": requests, "instructions_per_request": None}
        totals = re.search(r"^(?:totals|summary): (\d+)", out.read_text(), re.MULTILINE)
    instructions = int(totals.group(1)) if totals else 0
    if instructions == 0:
        raise RuntimeError(f"callgrind counted nothing: this Python has no symbol {TOGGLE} to toggle on")
    return {"settings": settings, "path": path, "requests": requests, "instructions_per_request": instructions // requests}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--no-valgrind", action="store_true", help="Run the requests without counting (checks the code).")
    parser.add_argument("--child", nargs=3, metavar=("USERNAME", "PATH", "REQUESTS"))
    args = parser.parse_args()
    if args.child:
        username, path, requests = args.child
        child(username, path, int(requests))
        return

    inprocess.setup_django()
    from django.db import connection

    inprocess.migrate()
    inprocess.seed(clinics=2, staff=100)
    db_url = common.PG_URL if connection.vendor == "postgresql" else common.SQLITE_URL
    use_valgrind = not args.no_valgrind and shutil.which("valgrind") is not None
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # callgrind runs one thread: one measure per core
        futures = {name: pool.submit(measure, name, requests=args.requests, db_url=db_url, use_valgrind=use_valgrind)
                   for name in MEASURES}
        measures = {name: future.result() for name, future in futures.items()}
    counts = {name: m["instructions_per_request"] for name, m in measures.items()}
    common.write_json(args.out, {
        "counted": use_valgrind,
        "tool": "valgrind --tool=callgrind (instructions executed, Ir)" if use_valgrind else "not counted (--no-valgrind)",
        "database": connection.vendor,
        "measures": measures,
        # Requests per instruction of (a) relative to (b): enforcement's cost, free of the machine's noise.
        "instruction_capacity_ratio_a_over_b": common.ratio(counts["home_no_2fa"], counts["home_app"]) if use_valgrind else None,
    })


if __name__ == "__main__":
    main()
