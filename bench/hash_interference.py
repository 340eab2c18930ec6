"""What a password check running in the background costs the page views beside it.

A sign-in rush sets the staff page p99 of part 4: the slow page views come while
password checks run. The checks already run at SCHED_IDLE (clinic_auth/hashers.py),
yet they slowed page views on the other core. This measures why, and what the
helper's way of hashing changes.

The shipped gunicorn serves one verified page (/home/) to wrk, one connection
(a single person's clicks), while a background process does one of:
  none: nothing (the baseline of each round);
  lanes: Django's Argon2PasswordHasher.verify, as argon2-cffi runs it: a thread per lane (8);
  one_thread: the helper's check (hashers._verify): the same hash, its lanes on one thread;
each at SCHED_IDLE and niced, as the helper runs. The three alternate in every
round, and each round's figures are divided by that round's "none".

    DEBUG=0 .venv/bin/python -m bench.hash_interference --out /tmp/hash.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from bench import common, inprocess
from bench.enforcement import run_wrk

USERNAME = "bench-c002-u000002"
PAGE = "/home/"
MODES = ("none", "lanes", "one_thread")


def background(mode: str, seconds: float) -> None:
    """Check one password over and over at the helper's priority; print how many and how long."""
    inprocess.setup_django()
    from django.conf import settings
    from django.contrib.auth.hashers import Argon2PasswordHasher

    from clinic_auth import hashers

    encoded = Argon2PasswordHasher().encode("a password", Argon2PasswordHasher().salt())
    check = {"lanes": Argon2PasswordHasher().verify, "one_thread": hashers._verify}[mode]
    hashers._lower_priority(settings.PASSWORD_HASH_SCHED_IDLE, settings.PASSWORD_HASH_NICE)
    walls = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        assert check("a password", encoded)
        walls.append(time.perf_counter() - started)
    print(f"{len(walls)} {statistics.median(walls) * 1000:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--background", choices=MODES[1:], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.background:
        return background(args.background, args.seconds + 2)
    if not args.out:
        parser.error("--out is required")

    os.environ.setdefault("DATABASE_URL", common.SQLITE_URL)  # as the server's below, unless told
    inprocess.setup_django()
    from django.db import connection

    from users.models import User

    inprocess.migrate()
    inprocess.seed(clinics=2, staff=100)
    device = inprocess.device_of(User.objects.get(username=USERNAME))
    inprocess.allow_fresh_code(device)
    db_url = common.PG_URL if connection.vendor == "postgresql" else common.SQLITE_URL
    with common.gunicorn(env={"DATABASE_URL": db_url, "DB_CONN_MAX_AGE": "60"}, shipped_config=True) as server:
        session = common.Session(server.url)
        common.login_over_http(session, USERNAME, common.PASSWORD, lambda: inprocess.code_for(device))
        cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
        run_wrk(server.url + PAGE, cookie, seconds=2, connections=args.connections)  # warm up
        rounds = []
        for r in range(args.rounds):
            measured = {}
            for mode in MODES[r % 3:] + MODES[: r % 3]:  # rotate who goes first
                helper = None
                if mode != "none":
                    helper = subprocess.Popen(
                        [sys.executable, "-m", "bench.hash_interference", "--background", mode, "--seconds", str(args.seconds)],
                        cwd=common.ROOT, stdout=subprocess.PIPE, text=True,
                    )
                    time.sleep(1.5)  # its interpreter and Django started, it is hashing
                run = run_wrk(server.url + PAGE, cookie, seconds=args.seconds, connections=args.connections)
                if helper is not None:
                    checks, median_ms = helper.communicate(timeout=60)[0].split()
                    run.update(checks=int(checks), check_median_ms=float(median_ms))
                measured[mode] = run
            rounds.append(measured)
            print(
                f"round {r + 1}: "
                + ", ".join(f"{m} {measured[m]['rps']:.0f} req/s p99 {measured[m]['p99_ms']:.1f} ms" for m in MODES),
                flush=True,
            )

    def median(mode, key):
        return round(statistics.median(rnd[mode][key] for rnd in rounds), 2)

    result = {
        "page": PAGE,
        "connections": args.connections,
        "rounds": rounds,
        "modes": {
            mode: {
                "rps_median": median(mode, "rps"),
                "p50_ms_median": median(mode, "p50_ms"),
                "p99_ms_median": median(mode, "p99_ms"),
                "rps_over_none_median": round(statistics.median(rnd[mode]["rps"] / rnd["none"]["rps"] for rnd in rounds), 3),
                **({"checks_per_round_median": median(mode, "checks"), "check_ms_median": median(mode, "check_median_ms")}
                   if mode != "none" else {}),
            }
            for mode in MODES
        },
        "one_thread_over_lanes_rps_paired_median": round(
            statistics.median(rnd["one_thread"]["rps"] / rnd["lanes"]["rps"] for rnd in rounds), 3),
        "one_thread_better_rps_rounds": sum(rnd["one_thread"]["rps"] > rnd["lanes"]["rps"] for rnd in rounds),
    }
    common.write_json(args.out, result)
    print("| Background | req/s (median) | ratio to none | p50 ms | p99 ms | checks per round | ms per check |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode, m in result["modes"].items():
        print(f"| {mode} | {m['rps_median']} | {m['rps_over_none_median']} | {m['p50_ms_median']} | {m['p99_ms_median']} | "
              f"{m.get('checks_per_round_median', '—')} | {m.get('check_ms_median', '—')} |")
    print(f"one_thread / lanes, paired: {result['one_thread_over_lanes_rps_paired_median']} "
          f"(better in {result['one_thread_better_rps_rounds']} of {len(rounds)} rounds)")


if __name__ == "__main__":
    main()
