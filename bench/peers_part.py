"""Bench part 6: ClinicAuth beside django-two-factor-auth and django-allauth's mfa, in the same run.

For each stack (bench/peers/): its own PostgreSQL database on the same server (ClinicAuth uses the
run's database), a user with a confirmed TOTP authenticator, and in-process (bench/peers/prepare.py):
  * the code step: the POST that submits a valid code after the password step, >= 30 logins;
  * queries per verified GET of a one-line page behind the stack's protection.
Then four gunicorns (2 sync workers each, as part 1) serve that page to one verified session each:
ClinicAuth, two-factor-auth, allauth, and bare Django `login_required` (bench/peers/bare_site.py).
wrk runs them in interleaved rounds; each stack's throughput is compared with the bare site's
in the same round (median of the per-round ratios).
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from bench import common
from bench.enforcement import run_wrk

STACKS = {
    "clinicauth": "bench.peers.clinicauth_site",
    "two_factor": "bench.peers.two_factor_site",
    "allauth": "bench.peers.allauth_site",
    "bare": "bench.peers.bare_site",
}
PAGE = "/protected/"


def database_url(stack: str) -> str:
    return common.PG_URL if stack == "clinicauth" else f"{common.PG_URL}_{stack}"


def recreate(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(common.PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(common.PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("django", "django-otp", "django-two-factor-auth", "django-allauth"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--logins", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--warmup-seconds", type=int, default=2)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--side-by-side", action="store_true", help="Time the stacks at once: checks the code, not the numbers.")
    args = parser.parse_args()

    prepared, failed = {}, {}
    peers = [stack for stack in STACKS if stack != "clinicauth"]
    for stack in peers:
        recreate(database_url(stack))

    def migrate(stack):  # untimed, so the peers' databases are built side by side
        return common.run_step(
            "bench.peers.prepare", "--stack", stack, "--migrate-only",
            env={"DJANGO_SETTINGS_MODULE": STACKS[stack], "DATABASE_URL": database_url(stack)},
        )

    with ThreadPoolExecutor(len(peers)) as pool:
        migrations = {stack: pool.submit(migrate, stack) for stack in peers}
    for stack, future in migrations.items():
        if future.exception() is not None:
            failed[stack] = f"{future.exception().__class__.__name__}: {future.exception()}"
    def prepare(stack):
        return common.run_step(
            "bench.peers.prepare", "--stack", stack, "--logins", str(args.logins),
            env={"DJANGO_SETTINGS_MODULE": STACKS[stack], "DATABASE_URL": database_url(stack), "DB_CONN_MAX_AGE": "60"},
        )

    # The timed logins, one stack at a time (--side-by-side, for the smoke test only, runs them at once).
    with ThreadPoolExecutor(len(STACKS) if args.side_by_side else 1) as pool:
        preparing = {stack: pool.submit(prepare, stack) for stack in STACKS if stack not in failed}
    for stack, future in preparing.items():
        if future.exception() is None:
            prepared[stack] = future.result()
        else:  # a peer that cannot run here is reported, not fatal
            failed[stack] = f"{future.exception().__class__.__name__}: {future.exception()}"

    rounds = []
    try:
        specs = {
            stack: dict(
                workers=2, settings=STACKS[stack], wsgi="bench.peers.wsgi:application", probe=PAGE,
                env={"DATABASE_URL": database_url(stack), "DB_CONN_MAX_AGE": "60"},
            )
            for stack in prepared
        }
        with common.gunicorns(specs) as servers:
            cookies = {s: f"{p['session_cookie_name']}={p['session_key']}" for s, p in prepared.items()}
            for stack, server in servers.items():  # the session is verified on the server too; warm up
                probe = common.Session(server.url)
                probe.cookies[prepared[stack]["session_cookie_name"]] = prepared[stack]["session_key"]
                common.expect(probe.get(PAGE), 200, f"{stack} {PAGE}")
                if args.warmup_seconds > 0:
                    run_wrk(server.url + PAGE, cookies[stack], seconds=args.warmup_seconds, connections=args.connections)
            names = list(servers)
            for r in range(args.rounds):
                order = names[r % len(names):] + names[: r % len(names)]
                rnd = {}
                for name in order:
                    cpu_before = servers[name].cpu_seconds()
                    run = run_wrk(servers[name].url + PAGE, cookies[name], seconds=args.seconds, connections=args.connections)
                    run["cpu_ms_per_request"] = (servers[name].cpu_seconds() - cpu_before) * 1000 / max(
                        1, run["ok"] + run["other_status"]
                    )
                    rnd[name] = run
                rounds.append(rnd)
                time.sleep(0.3)
    finally:
        if not args.keep_db:
            for stack in STACKS:
                if stack != "clinicauth":
                    drop(database_url(stack))

    stacks = {}
    for name, p in prepared.items():
        runs = [rnd[name] for rnd in rounds]
        entry = {
            "settings": STACKS[name],
            "queries_per_request": p["queries_per_request"],
            "queries_constant": p["queries_constant"],
            "statements": p["statements"],
            "rps_median": round(statistics.median(run["rps"] for run in runs), 1),
            "rps_rounds": [run["rps"] for run in runs],
            "cpu_ms_per_request_median": round(statistics.median(run["cpu_ms_per_request"] for run in runs), 3),
            "non_200": sum(run["other_status"] for run in runs),
        }
        if "bare" in prepared:
            entry["throughput_ratio_to_bare_paired_median"] = round(
                statistics.median(rnd[name]["rps"] / rnd["bare"]["rps"] for rnd in rounds), 3
            )
            entry["extra_queries_over_bare"] = p["queries_per_request"] - prepared["bare"]["queries_per_request"]
        for key in ("logins", "code_step_median_ms", "code_step_p95_ms"):
            if key in p:
                entry[key] = p[key]
        stacks[name] = entry

    comparisons = {}
    ours = stacks.get("clinicauth")
    for peer in ("two_factor", "allauth"):
        theirs = stacks.get(peer)
        if not ours or not theirs:
            continue
        comparisons[peer] = {
            # Below 1 is better for ClinicAuth (time), above 1 is better (throughput).
            "code_step_median_ratio": common.ratio(ours["code_step_median_ms"], theirs["code_step_median_ms"]),
            "code_step_p95_ratio": common.ratio(ours["code_step_p95_ms"], theirs["code_step_p95_ms"]),
            "throughput_ratio_paired_median": round(
                statistics.median(rnd["clinicauth"]["rps"] / rnd[peer]["rps"] for rnd in rounds), 3
            ),
            "queries_per_request": f"{ours['queries_per_request']} / {theirs['queries_per_request']}",
        }
    common.write_json(
        args.out,
        {
            "page": PAGE,
            "versions": versions(),
            "gunicorn_workers": 2,
            "wrk": {"threads": 1, "connections": args.connections, "seconds": args.seconds, "rounds": args.rounds},
            "stacks": stacks,
            "failed": failed,
            "clinicauth_over_peer": comparisons,
        },
    )


if __name__ == "__main__":
    main()
