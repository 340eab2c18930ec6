"""Database connections for many nodes: a connection kept per gunicorn thread against psycopg's pool.

One node as shipped (gunicorn.conf.py: gthread, WEB_CONCURRENCY workers x GUNICORN_THREADS threads)
on PostgreSQL, the same verified page (/home/) under wrk, two variants run interleaved:
  (a) DB_CONN_MAX_AGE=60: each thread that served a request keeps its own connection,
  (b) DB_POOL_MAX_SIZE=N: the threads of a worker share a pool of N connections.
Reported: page views per second (medians of the rounds, and their ratio in the same run), and the
most connections the node held to PostgreSQL while loaded (pg_stat_activity, sampled).

    python -m bench.pool_part --out bench/results/pool.json   (needs PostgreSQL and wrk)
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from bench import common, inprocess
from bench.enforcement import PAGE, USERNAME, run_wrk

WORKERS = 2
THREADS = 16


def peak_connections(database: str, stop: threading.Event, found: list[int]) -> None:
    import psycopg

    with psycopg.connect(common.PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as db:
        while not stop.is_set():
            count = db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'", (database,)
            ).fetchone()[0]
            found.append(count)
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (more than the pool)")
    parser.add_argument("--pool-size", type=int, default=4)
    args = parser.parse_args()

    inprocess.setup_django()
    from django.conf import settings
    from django.db import connection

    from users.models import User

    if connection.vendor != "postgresql":
        raise SystemExit("bench.pool_part needs PostgreSQL (DATABASE_URL).")
    inprocess.migrate()
    inprocess.seed(clinics=2, staff=100)
    user = User.objects.get(username=USERNAME)
    device = inprocess.device_of(user)
    inprocess.allow_fresh_code(device)
    database = connection.settings_dict["NAME"]
    connection.close()

    base = {"DATABASE_URL": common.PG_URL, "GUNICORN_THREADS": str(THREADS)}
    variants = {
        "a_connection_per_thread": {**base, "DB_CONN_MAX_AGE": "60"},
        "b_pool": {**base, "DB_CONN_MAX_AGE": "0", "DB_POOL_MAX_SIZE": str(args.pool_size)},
    }
    cookie = None
    rounds = []
    names = list(variants)
    for r in range(args.rounds):
        rnd = {}
        for name in names[r % 2:] + names[: r % 2]:
            # One server at a time, so every connection counted is this variant's.
            with common.gunicorn(workers=WORKERS, env=variants[name], shipped_config=True) as server:
                if cookie is None:
                    session = common.Session(server.url)
                    common.login_over_http(session, USERNAME, common.PASSWORD, lambda: inprocess.code_for(device))
                    cookie = f"{settings.SESSION_COOKIE_NAME}={session.cookies[settings.SESSION_COOKIE_NAME]}"
                run_wrk(server.url + PAGE, cookie, seconds=2, connections=args.connections)  # warm up
                stop, samples = threading.Event(), []
                sampler = threading.Thread(target=peak_connections, args=(database, stop, samples))
                sampler.start()
                run = run_wrk(server.url + PAGE, cookie, seconds=args.seconds, connections=args.connections)
                stop.set()
                sampler.join()
                run["peak_connections"] = max(samples)
                rnd[name] = run
        rounds.append(rnd)

    result = {"page": PAGE, "workers": WORKERS, "threads": THREADS, "pool_size": args.pool_size,
              "wrk": {"connections": args.connections, "seconds": args.seconds, "rounds": args.rounds}, "variants": {}}
    for name in names:
        runs = [rnd[name] for rnd in rounds]
        result["variants"][name] = {
            "rps_median": round(statistics.median(run["rps"] for run in runs), 1),
            "rps_rounds": [run["rps"] for run in runs],
            "p99_ms_median": round(statistics.median(run["p99_ms"] for run in runs), 1),
            "non_200": sum(run["other_status"] for run in runs),
            "peak_connections": max(run["peak_connections"] for run in runs),
        }
    pool, per_thread = result["variants"]["b_pool"], result["variants"]["a_connection_per_thread"]
    result["throughput_ratio_pool_over_per_thread"] = common.ratio(pool["rps_median"], per_thread["rps_median"])
    per_round = [rnd["b_pool"]["rps"] / rnd["a_connection_per_thread"]["rps"] for rnd in rounds]
    result["throughput_ratio_per_round"] = [round(x, 3) for x in per_round]
    # Each pair ran back to back, sharing the machine's state: the median of their ratios is the figure.
    result["throughput_ratio_paired_median"] = round(statistics.median(per_round), 3)
    result["connections_bound"] = {
        "a_connection_per_thread": f"workers x threads = {WORKERS * THREADS} per node",
        "b_pool": f"workers x DB_POOL_MAX_SIZE = {WORKERS * args.pool_size} per node",
    }
    common.write_json(args.out, result)


if __name__ == "__main__":
    main()
