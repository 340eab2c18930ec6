"""What enforcing 2FA costs on every verified request.

The same verified page (/home/), the same session, three gunicorns (2 sync
workers each, loopback, DEBUG=0) that differ only in settings:
  (a) this app (clinic_auth.settings),
  (b) without TwoFactorMiddleware (bench.settings_no2fa),
  (c) django-otp's OTPMiddleware + otp_required instead (bench.settings_djangootp).
wrk runs the variants interleaved, several rounds, and we compare medians.
Queries per request come from the test Client under each settings module.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import common, inprocess

VARIANTS = {
    "a_this_app": "clinic_auth.settings",
    "b_no_2fa_middleware": "bench.settings_no2fa",
    "c_django_otp": "bench.settings_djangootp",
}
USERNAME = "bench-c002-u000002"
PAGE = "/home/"
WRK_SCRIPT = Path(__file__).with_name("wrk_status.lua")


def run_wrk(url: str, cookie: str, *, seconds: int, connections: int) -> dict:
    out = subprocess.run(
        [
            "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
            "-s", str(WRK_SCRIPT), "-H", f"Cookie: {cookie}", url,
        ],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    status = re.search(r"STATUS ok=(\d+) other=(\d+)", out)
    latency = re.search(r"LATENCY p50_us=(\d+) p99_us=(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "ok": int(status.group(1)),
        "other_status": int(status.group(2)),
        "p50_ms": int(latency.group(1)) / 1000,
        "p99_ms": int(latency.group(2)) / 1000,
        "socket_errors": errors.group(1) if errors else "",
    }


def measured_run(server: common.Server, cookie: str, args) -> dict:
    """One wrk run, plus the app server's CPU per request (unaffected by other processes' load)."""
    cpu_before = server.cpu_seconds()
    run = run_wrk(server.url + PAGE, cookie, seconds=args.seconds, connections=args.connections)
    run["cpu_ms_per_request"] = (server.cpu_seconds() - cpu_before) * 1000 / max(1, run["ok"] + run["other_status"])
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--warmup-seconds", type=int, default=2)
    args = parser.parse_args()

    inprocess.setup_django()
    from django.conf import settings
    from django.db import connection

    from users.models import User

    inprocess.migrate()
    inprocess.seed(clinics=2, staff=100)
    user = User.objects.get(username=USERNAME)
    device = inprocess.device_of(user)
    inprocess.allow_fresh_code(device)
    db_url = common.PG_URL if connection.vendor == "postgresql" else common.SQLITE_URL
    server_env = {"DATABASE_URL": db_url, "DB_CONN_MAX_AGE": "60"}

    with common.gunicorns({name: dict(workers=2, env=server_env, settings=settings) for name, settings in VARIANTS.items()}) as servers:
        urls = {name: server.url for name, server in servers.items()}
        # One real login (password + code) on variant (a); all three serve that session.
        session = common.Session(urls["a_this_app"])
        common.login_over_http(session, USERNAME, common.PASSWORD, lambda: inprocess.code_for(device))
        session_cookie = settings.SESSION_COOKIE_NAME
        session_key = session.cookies[session_cookie]
        page_bytes = {}
        for name, url in urls.items():
            probe = common.Session(url)
            probe.cookies[session_cookie] = session_key
            response = common.expect(probe.get(PAGE), 200, f"{name} {PAGE}")
            page_bytes[name] = len(response.body)

        cookie = f"{session_cookie}={session_key}"
        with ThreadPoolExecutor(len(VARIANTS)) as pool:  # untimed: the three counts side by side
            counting = {
                name: pool.submit(
                    common.run_step, "bench.count_queries", "--session", session_key, "--path", PAGE,
                    env={"DJANGO_SETTINGS_MODULE": settings, "DATABASE_URL": db_url},
                )
                for name, settings in VARIANTS.items()
            }
        queries = {name: future.result() for name, future in counting.items()}

        for url in urls.values() if args.warmup_seconds > 0 else ():  # warm up every worker (0: none)
            run_wrk(url + PAGE, cookie, seconds=args.warmup_seconds, connections=args.connections)
        rounds = []
        names = list(VARIANTS)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[: r % len(names)]  # rotate who goes first
            rounds.append({name: measured_run(servers[name], cookie, args) for name in order})
            time.sleep(0.5)

    variants = {}
    for name in names:
        runs = [rnd[name] for rnd in rounds]
        variants[name] = {
            "settings": VARIANTS[name],
            "rps_median": round(statistics.median(run["rps"] for run in runs), 1),
            "rps_rounds": [run["rps"] for run in runs],
            "p50_ms_median": round(statistics.median(run["p50_ms"] for run in runs), 2),
            "cpu_ms_per_request_median": round(statistics.median(run["cpu_ms_per_request"] for run in runs), 3),
            "cpu_ms_per_request_rounds": [round(run["cpu_ms_per_request"], 3) for run in runs],
            "non_200": sum(run["other_status"] for run in runs),
            "socket_errors": [run["socket_errors"] for run in runs if run["socket_errors"]],
            "queries_per_request": queries[name]["queries_per_request"],
            "queries_constant": queries[name]["queries_constant"],
            "statements": queries[name]["statements"],
            "page_bytes": page_bytes[name],
        }
    base = variants["b_no_2fa_middleware"]
    # Per-round ratios too: each pair ran back to back, so they share the machine's state.
    round_ratio = [rnd["a_this_app"]["rps"] / rnd["b_no_2fa_middleware"]["rps"] for rnd in rounds]
    cpu = {name: variants[name]["cpu_ms_per_request_median"] for name in names}
    common.write_json(
        args.out,
        {
            "page": PAGE,
            "gunicorn_workers": 2,
            "wrk": {"threads": 1, "connections": args.connections, "seconds": args.seconds, "rounds": args.rounds},
            "database": connection.vendor,
            "variants": variants,
            "throughput_ratio_a_over_b": common.ratio(variants["a_this_app"]["rps_median"], base["rps_median"]),
            "throughput_ratio_a_over_b_per_round": [round(x, 3) for x in round_ratio],
            "throughput_ratio_a_over_b_paired_median": round(statistics.median(round_ratio), 3),
            # Requests per CPU-second of the app server, (a) relative to (b): capacity, not wall-clock.
            "capacity_ratio_a_over_b": common.ratio(cpu["b_no_2fa_middleware"], cpu["a_this_app"]),
            "capacity_ratio_c_over_b": common.ratio(cpu["b_no_2fa_middleware"], cpu["c_django_otp"]),
            "throughput_ratio_c_over_b": common.ratio(variants["c_django_otp"]["rps_median"], base["rps_median"]),
            "extra_queries_a_minus_b": variants["a_this_app"]["queries_per_request"] - base["queries_per_request"],
            "extra_queries_c_minus_b": variants["c_django_otp"]["queries_per_request"] - base["queries_per_request"],
        },
    )


if __name__ == "__main__":
    main()
