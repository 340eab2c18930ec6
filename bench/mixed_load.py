"""Mixed load against gunicorn (4 workers) and PostgreSQL, with a brute force running.

For a bounded time, on loopback:
  * staff sessions log in like a browser (password, then a current TOTP code),
    browse Home and My Profile with think time, log out, and log in again as
    the next account of the pool (each account logs in once: codes are single-use);
  * clinic admins search, page through and open users of their 10,000-user clinic;
  * an attacker who knows one account's password sends wrong codes as fast as
    the pacing allows, and another one guesses a password from its own address.
Reports errors, p50/p99 latency and throughput, the same pages' latency with a
single client before the load (the baseline), and how many of the attackers'
guesses were evaluated at all.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import threading
import time
from collections import defaultdict

from bench import common, inprocess

STAFF_CLINICS = range(3, 11)  # clinics 1-2 serve the other parts of the benchmark
ADMIN_CLINICS = range(1, 11)
CODE_TARGET = "bench-c002-u000006"
PASSWORD_TARGET = "bench-c002-u000008"
# A documentation-range address, new each run (throttles persist in the database), sent as
# X-Forwarded-For behind TRUSTED_PROXY_COUNT=1; everyone else arrives from 127.0.0.1.
ATTACKER_ADDRESS = f"203.0.113.{random.randint(1, 254)}"
SEARCH_TERMS = ["kowal", "okaf", "naka", "ross", "gupta", "silva", "lind", "marsh", "zz-nobody", "bench-c001-u0004"]
STAFF_PAGES = ["/home/", "/profile/"]
CODE_INVALID = b"That code is not valid"
CODE_LOCKED = b"Too many incorrect codes"
# The throttle's early delays (django-otp's, 1 s doubling) say "wait" instead of "locked".
CODE_WAIT = re.compile(rb"Wait (a second|\d+ seconds) and try again")
PASSWORD_INVALID = b"The username or password is incorrect"
PASSWORD_LOCKED = b"Too many failed sign-in attempts"


PAGE_KINDS = ("page", "admin_list", "admin_search", "admin_view")


class Stats:
    """Thread-safe latency and error log of the legitimate traffic.

    Each latency is kept with the time it completed, so the summary can also
    show the steady state after the opening rush of logins.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.origin = time.monotonic()
        self.latency: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.errors: list[str] = []
        self.logins = 0

    def record(self, kind: str, response: common.Response) -> None:
        with self.lock:
            self.latency[kind].append((time.monotonic() - self.origin, response.seconds))

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def summary(self, seconds: float, *, steady_after: float | None = None) -> dict:
        def ms(values, pct):
            return round(common.percentile(values, pct) * 1000, 1)

        everything = [s for values in self.latency.values() for _, s in values]
        pages = [s for kind in PAGE_KINDS for _, s in self.latency.get(kind, [])]
        result = {
            "requests": len(everything),
            "errors": len(self.errors),
            "error_samples": self.errors[:10],
            "logins_completed": self.logins,
            "throughput_rps": round(len(everything) / seconds, 1),
            "logins_per_s": round(self.logins / seconds, 2),
            "p50_ms": ms(everything, 50),
            "p99_ms": ms(everything, 99),
            "page_p50_ms": ms(pages, 50),
            "page_p99_ms": ms(pages, 99),
            "by_kind": {
                kind: {"requests": len(values), "p50_ms": ms([s for _, s in values], 50), "p99_ms": ms([s for _, s in values], 99)}
                for kind, values in sorted(self.latency.items())
            },
        }
        if steady_after is not None:
            steady = [s for values in self.latency.values() for t, s in values if t >= steady_after]
            steady_pages = [s for kind in PAGE_KINDS for t, s in self.latency.get(kind, []) if t >= steady_after]
            result["steady_state"] = {
                "after_s": steady_after,
                "requests": len(steady),
                "throughput_rps": round(len(steady) / max(1e-9, seconds - steady_after), 1),
                "p50_ms": ms(steady, 50),
                "p99_ms": ms(steady, 99),
                "page_p50_ms": ms(steady_pages, 50),
                "page_p99_ms": ms(steady_pages, 99),
            }
        return result


class Pool:
    """Accounts that have not logged in yet during this run (a TOTP code works once)."""

    def __init__(self, accounts):
        self.accounts = list(accounts)
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            return self.accounts.pop() if self.accounts else None


def code_of(device):
    return lambda: inprocess.code_for(device)


def staff_session(url, pool, stats, deadline, args, rng):
    time.sleep(rng.uniform(0, args.stagger))
    while time.monotonic() < deadline:
        account = pool.take()
        if account is None:
            stats.error("account pool exhausted")
            return
        username, device = account
        session = common.Session(url)
        try:
            common.login_over_http(session, username, common.PASSWORD, code_of(device), stats.record)
            with stats.lock:
                stats.logins += 1
            for _ in range(args.pages_per_login):
                time.sleep(rng.uniform(args.think_min, args.think_max))
                if time.monotonic() >= deadline:
                    return
                response = session.get(rng.choice(STAFF_PAGES))
                stats.record("page", common.expect(response, 200, "staff page"))
            stats.record("logout", common.expect(session.post("/accounts/logout/", {}), 302, "logout"))
        except (common.FlowError, OSError) as exc:
            stats.error(f"{username}: {exc}")
            time.sleep(0.5)


def admin_session(url, admin, stats, deadline, args, rng):
    username, device, member_ids = admin
    session = common.Session(url)
    try:
        time.sleep(rng.uniform(0, args.stagger))
        common.login_over_http(session, username, common.PASSWORD, code_of(device), stats.record)
        with stats.lock:
            stats.logins += 1
    except (common.FlowError, OSError) as exc:
        stats.error(f"{username}: {exc}")
        return
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(args.think_min * 2, args.think_max * 2))
        choice = rng.random()
        if choice < 0.5:
            kind, path = "admin_search", f"/users/?q={rng.choice(SEARCH_TERMS)}"
        elif choice < 0.75:
            kind, path = "admin_list", f"/users/?page={rng.randint(1, 200)}"
        else:
            kind, path = "admin_view", f"/users/{rng.choice(member_ids)}/"
        try:
            stats.record(kind, common.expect(session.get(path), 200, f"admin {path}"))
        except (common.FlowError, OSError) as exc:
            stats.error(f"{username}: {exc}")


def code_attacker(url, device, deadline, args, outcome):
    """Knows the password; tries wrong codes until the time is up."""
    session = common.Session(url, forwarded_for=ATTACKER_ADDRESS)
    common.expect(session.get("/accounts/login/"), 200, "attacker login page")
    common.expect(session.post("/accounts/login/", {"username": CODE_TARGET, "password": common.PASSWORD}), 302, "attacker password")
    common.expect(session.get("/accounts/two-factor/"), 200, "attacker challenge")
    while time.monotonic() < deadline and outcome["attempts"] < args.max_attempts:
        valid = {inprocess.code_for(device, offset_steps=k) for k in (-1, 0, 1)}
        guess = f"{random.randrange(1_000_000):06d}"
        if guess in valid:
            continue
        response = session.post("/accounts/two-factor/", {"code": guess})
        outcome["attempts"] += 1
        if response.status == 302:
            outcome["accepted"] += 1  # a wrong code let in: must never happen
        elif CODE_LOCKED in response.body or CODE_WAIT.search(response.body):
            outcome["refused_throttled"] += 1
        elif CODE_INVALID in response.body:
            outcome["rejected_after_check"] += 1
        else:
            outcome["other"] += 1
        time.sleep(args.attack_interval)


def password_attacker(url, deadline, args, outcome):
    """Guesses a password from its own address."""
    session = common.Session(url, forwarded_for=ATTACKER_ADDRESS)
    while time.monotonic() < deadline and outcome["attempts"] < args.max_attempts:
        common.expect(session.get("/accounts/login/"), 200, "attacker login page")
        response = session.post("/accounts/login/", {"username": PASSWORD_TARGET, "password": f"guess-{outcome['attempts']}"})
        outcome["attempts"] += 1
        if response.status == 302:
            outcome["accepted"] += 1
        elif PASSWORD_LOCKED in response.body:
            outcome["refused_throttled"] += 1
        elif PASSWORD_INVALID in response.body:
            outcome["rejected_after_check"] += 1
        else:
            outcome["other"] += 1
        time.sleep(args.attack_interval)


def baseline(url, admin, account, *, repeats: int) -> dict:
    """The same requests from a single client on the idle server."""
    stats = Stats()
    username, device = account
    session = common.Session(url)
    common.login_over_http(session, username, common.PASSWORD, code_of(device), stats.record)
    for _ in range(repeats):
        for path in STAFF_PAGES:
            stats.record("page", common.expect(session.get(path), 200, "baseline page"))
    username, device, member_ids = admin
    session = common.Session(url)
    common.login_over_http(session, username, common.PASSWORD, code_of(device), stats.record)
    for i in range(repeats):
        stats.record("admin_search", common.expect(session.get(f"/users/?q={SEARCH_TERMS[i % 4]}"), 200, "baseline search"))
        stats.record("admin_list", common.expect(session.get(f"/users/?page={1 + i * 9}"), 200, "baseline list"))
        stats.record("admin_view", common.expect(session.get(f"/users/{member_ids[i]}/"), 200, "baseline view"))
    return stats.summary(1)


def load_accounts(args):
    from django.db.models import F

    from users.management.commands.seed_bench import bench_username, is_enrolled_index, totp_device_model
    from users.models import User

    Device = totp_device_model()
    wanted = [
        bench_username(clinic, n)
        for clinic in STAFF_CLINICS
        for n in range(2, args.per_clinic, 2)
        if is_enrolled_index(n)
    ][: args.pool_size]
    admins = [bench_username(clinic, 0) for clinic in ADMIN_CLINICS][: args.admin_sessions + 1]
    specials = [CODE_TARGET]
    devices = Device.objects.filter(user__username__in=wanted + admins + specials, confirmed=True).annotate(
        username=F("user__username")
    )
    # Benchmark only: forget used time steps and failures from earlier runs on this database.
    devices.update(last_t=-1, throttling_failure_count=0, throttling_failure_timestamp=None)
    # ... and their signed-in browsers: the "before" run's sessions would otherwise still be live
    # in the "after" run, and My Profile (which lists them) would cost more there than here.
    from django.contrib.sessions.models import Session

    from users.models import UserSession

    earlier = UserSession.objects.filter(user__username__in=wanted + admins + specials)
    Session.objects.filter(session_key__in=earlier.values("session_key")).delete()
    earlier.delete()
    by_name = {device.username: device for device in devices}
    pool = [(name, by_name[name]) for name in wanted if name in by_name]
    random.Random(7).shuffle(pool)
    admin_accounts = []
    for name in admins:
        clinic_id = User.objects.get(username=name).clinic_id
        member_ids = list(User.objects.filter(clinic_id=clinic_id).values_list("pk", flat=True)[:2000])
        admin_accounts.append((name, by_name[name], member_ids))
    return pool, admin_accounts, by_name[CODE_TARGET]


def code_throttle_bound(seconds: float) -> int:
    """Most wrong codes the throttle can let through in `seconds`: delays of factor * 2**(n-1)
    after the n-th failure (django-otp), and never more than the lockout count."""
    from django.conf import settings

    factor = settings.OTP_TOTP_THROTTLE_FACTOR
    lockout = settings.CLINICAUTH_CODE_LOCKOUT_FAILURES
    if factor <= 0:
        return lockout
    return min(lockout, 1 + int(math.log2(seconds / factor + 1)))


def password_throttle_limit() -> int | None:
    try:
        from users.login_throttle import ACCOUNT_FROM_ADDRESS
    except ImportError:
        return None
    return ACCOUNT_FROM_ADDRESS.limit


def set_password_hashes(hasher: str) -> str:
    """Give every bench account the same password hashed with the chosen parameters (the bench's
    accounts share one hash: hashing a million would take days); returns the settings module the
    server runs with, whose first hasher checks them without re-hashing."""
    from django.contrib.auth.hashers import Argon2PasswordHasher

    from clinic_auth.passwords import ClinicArgon2PasswordHasher
    from users.models import User

    from users.management.commands.seed_bench import CLINIC_NAME

    chosen = {"shipped": ClinicArgon2PasswordHasher, "django-defaults": Argon2PasswordHasher}[hasher]()
    clinics = [CLINIC_NAME.format(number) for number in ADMIN_CLINICS]  # every account this part signs in
    User.objects.filter(clinic__name__in=clinics).update(password=chosen.encode(common.PASSWORD, chosen.salt()))
    return "clinic_auth.settings" if hasher == "shipped" else "bench.settings_django_argon2"


def gunicorn_shape() -> dict:
    """Workers, worker class and threads of the server under test, read from gunicorn.conf.py."""
    import runpy

    conf = runpy.run_path(str(common.ROOT / "gunicorn.conf.py"))
    return {"config": "gunicorn.conf.py", "workers": conf["workers"], "worker_class": conf["worker_class"],
            "threads": conf.get("threads", 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--staff-sessions", type=int, default=50)
    parser.add_argument("--admin-sessions", type=int, default=5)
    parser.add_argument("--pages-per-login", type=int, default=100)
    parser.add_argument("--think-min", type=float, default=0.2)
    parser.add_argument("--think-max", type=float, default=0.6)
    parser.add_argument("--stagger", type=float, default=10.0, help="Sessions start spread over this many seconds.")
    parser.add_argument("--baseline-repeats", type=int, default=20, help="Single-client requests per page kind.")
    parser.add_argument("--attack-interval", type=float, default=0.05)
    parser.add_argument("--max-attempts", type=int, default=2000)
    parser.add_argument("--per-clinic", type=int, default=10_000)
    parser.add_argument("--pool-size", type=int, default=5000)
    parser.add_argument(
        "--hasher", choices=["shipped", "django-defaults"], default="shipped",
        help="shipped: ClinicAuth's Argon2 parameters; django-defaults: Django's own (100 MiB, t=2, p=8), as before them. "
        "Either way `gunicorn -c gunicorn.conf.py` as in production.",
    )
    args = parser.parse_args()

    inprocess.setup_django()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("The mixed load runs against PostgreSQL (DATABASE_URL=postgres://...).")
    inprocess.migrate()
    inprocess.seed(clinics=max(ADMIN_CLINICS), staff=args.per_clinic)
    settings_module = set_password_hashes(args.hasher)
    pool_list, admins, attacked_device = load_accounts(args)
    baseline_account = pool_list.pop()
    pool = Pool(pool_list)
    server_env = {"DATABASE_URL": common.PG_URL, "DB_CONN_MAX_AGE": "60", "TRUSTED_PROXY_COUNT": "1"}

    with common.gunicorn(env=server_env, settings=settings_module, shipped_config=True) as server:
        base = baseline(server.url, admins[-1], baseline_account, repeats=args.baseline_repeats)
        stats = Stats()  # its clock starts now, with the load
        code_outcome = defaultdict(int)
        password_outcome = defaultdict(int)
        rngs = random.Random(42)
        cpu_before = server.cpu_seconds()
        client_cpu_before = time.process_time()
        machine_before = common.system_cpu_ticks()
        started = time.monotonic()
        deadline = started + args.seconds
        threads = [
            threading.Thread(target=staff_session, args=(server.url, pool, stats, deadline, args, random.Random(rngs.random())))
            for _ in range(args.staff_sessions)
        ] + [
            threading.Thread(target=admin_session, args=(server.url, admins[i], stats, deadline, args, random.Random(rngs.random())))
            for i in range(args.admin_sessions)
        ] + [
            threading.Thread(target=code_attacker, args=(server.url, attacked_device, deadline, args, code_outcome)),
            threading.Thread(target=password_attacker, args=(server.url, deadline, args, password_outcome)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.seconds + 120)
        elapsed = time.monotonic() - started
        server_cpu = server.cpu_seconds() - cpu_before
        client_cpu = time.process_time() - client_cpu_before
        machine_busy = common.busy_fraction(machine_before, common.system_cpu_ticks())
        hung = sum(thread.is_alive() for thread in threads)
        memory = server.memory_mb()

    attacked_device.refresh_from_db()
    # Steady state: after every session has started and finished its first login.
    steady_after = args.stagger + 5 if args.seconds > args.stagger + 15 else None
    load = stats.summary(elapsed, steady_after=steady_after)
    common.write_json(
        args.out,
        {
            "seconds": round(elapsed, 1),
            "hasher": args.hasher,
            "settings": settings_module,
            "gunicorn": gunicorn_shape(),
            "gunicorn_workers": gunicorn_shape()["workers"],
            "server_memory_after_load": memory,
            "database": connection.vendor,
            "staff_sessions": args.staff_sessions,
            "admin_sessions": args.admin_sessions,
            "pages_per_login": args.pages_per_login,
            "think_time_s": [args.think_min, args.think_max],
            "stagger_s": args.stagger,
            "hung_threads": hung,
            # Shares of the machine's total CPU capacity during the load (all cores = 1.0).
            "cpu_share_app_server": round(server_cpu / (elapsed * (os.cpu_count() or 1)), 2),
            "cpu_share_load_generator": round(client_cpu / (elapsed * (os.cpu_count() or 1)), 2),
            "cpu_share_machine_busy": machine_busy,
            "load": load,
            "baseline_single_client": {k: base["by_kind"][k] for k in ("page", "admin_search", "admin_list", "admin_view", "password", "code", "sign_in")},
            "p50_ratio_load_over_baseline": {
                kind: common.ratio(load["by_kind"][kind]["p50_ms"], base["by_kind"][kind]["p50_ms"])
                for kind in ("page", "admin_search", "password", "code")
                if kind in load["by_kind"]
            },
            "code_brute_force": {
                **code_outcome,
                "evaluated_failures_server_side": attacked_device.throttling_failure_count,
                "target_logged_in_by_attacker": code_outcome["accepted"] > 0,
                "throttle_factor_s": settings.OTP_TOTP_THROTTLE_FACTOR,
                "max_evaluated_by_design": code_throttle_bound(elapsed),
            },
            "password_brute_force": {**password_outcome, "max_evaluated_by_design": password_throttle_limit()},
        },
    )


if __name__ == "__main__":
    main()
