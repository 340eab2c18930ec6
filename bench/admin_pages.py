"""The clinic's Users pages at 10,000, 100,000 and 1,000,000 users.

Run with DATABASE_URL pointing at an empty database (SQLite or PostgreSQL):
migrates, seeds one clinic of 10,000 users, measures, grows to the next number
of clinics in --scales (10: 100,000 users; 100: 1,000,000), measures again. On
PostgreSQL the search is measured with and without the trigram index of
users/migrations (0008_search_text_upper_case) up to 100,000 users, and the plans of
the two slowest pages at the largest scale are written to bench/results/plan-*.txt.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from bench import inprocess

SEARCH_TERM = "kowal"  # part of one surname of the seeded list: ~1 % of a clinic
ADMIN = "bench-c001-admin"


def trigram_migration():
    return importlib.import_module("users.migrations.0008_search_text_upper_case")


def measure_pages(client, *, per_clinic: int, iterations: int) -> dict:
    from users.management.commands.seed_bench import bench_username
    from users.models import User

    member = User.objects.get(username=bench_username(1, per_clinic // 2 - 1))
    last_page = -(-User.objects.filter(clinic__name="Bench Clinic 001").count() // 50)
    pages = {
        "user_list": "/users/",
        "user_list_middle_page": f"/users/?page={(last_page + 1) // 2}",
        "user_list_last_page": f"/users/?page={last_page}",
        "user_list_by_2fa": "/users/?sort=-2fa",
        "user_list_by_2fa_up": "/users/?sort=2fa",  # not set up first
        "user_list_without_2fa": "/users/?twofa=none",  # the 2FA-status filter
        "search": f"/users/?q={SEARCH_TERM}",
        "search_no_match": "/users/?q=zz-nobody",
        "view": f"/users/{member.pk}/",
    }
    return {name: inprocess.timed_get(client, path, iterations=iterations) for name, path in pages.items()}


def search_queries_ms(clinic, term: str, *, iterations: int) -> float:
    """Median time of the search's own SQL (count + first page), without the page around it."""
    import time

    from bench.common import median_ms
    from users import selectors

    times = []
    for _ in range(iterations + 3):
        started = time.perf_counter()
        users = selectors.user_list(clinic=clinic, query=term)
        users.count()
        list(users[:50])
        times.append(time.perf_counter() - started)
    return median_ms(times[3:])


def measure_search_indexes(client, *, iterations: int) -> dict:
    """Search with the trigram index, then without (dropped), then put it back."""
    from django.db import connection

    from clinics.models import Clinic

    clinic = Clinic.objects.get(name="Bench Clinic 001")
    migration = trigram_migration()
    terms = {"search": SEARCH_TERM, "search_no_match": "zz-nobody"}

    def measure():
        return {
            name: {
                "page_ms": inprocess.timed_get(client, f"/users/?q={term}", iterations=iterations)["median_ms"],
                "sql_ms": search_queries_ms(clinic, term, iterations=iterations),
            }
            for name, term in terms.items()
        }

    with_idx = measure()
    with connection.cursor() as cursor:
        for statement in migration.DROP_SQL:
            cursor.execute(statement)
        cursor.execute("ANALYZE users_user")
    try:
        without = measure()
    finally:
        with connection.cursor() as cursor:
            for statement in migration.CREATE_SQL:
                cursor.execute(statement)
            cursor.execute("ANALYZE users_user")
    return {
        name: {
            "page_with_index_ms": with_idx[name]["page_ms"],
            "page_without_index_ms": without[name]["page_ms"],
            "page_speedup": round(without[name]["page_ms"] / with_idx[name]["page_ms"], 2),
            "sql_with_index_ms": with_idx[name]["sql_ms"],
            "sql_without_index_ms": without[name]["sql_ms"],
            "sql_speedup": round(without[name]["sql_ms"] / with_idx[name]["sql_ms"], 2),
        }
        for name in terms
    }


def save_plans(client, pages: dict, *, label: str, directory) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement of the given pages, as text in bench/results/."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    written = []
    for name, path in pages.items():
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        lines = [f"GET {path}  ({label}; {len(captured)} queries; EXPLAIN (ANALYZE, BUFFERS) of each SELECT)", ""]
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            lines += ["-- " + sql, plan, ""]
        target = Path(directory) / f"plan-{label}-{name}.txt"
        target.write_text("\n".join(lines))
        written.append(target.name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--per-clinic", type=int, default=10_000)
    parser.add_argument("--scales", default="1,10", help="Numbers of clinics to grow to, in order.")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--plans-dir", default=str(Path(__file__).with_name("results")))
    args = parser.parse_args()

    inprocess.setup_django()
    from django.db import connection

    from bench.common import PASSWORD, write_json

    inprocess.migrate()
    vendor = connection.vendor
    result = {"database": vendor, "per_clinic": args.per_clinic, "scales": []}
    scales = [int(n) for n in args.scales.split(",")]
    for clinics in scales:
        seconds = inprocess.seed(clinics=clinics, staff=args.per_clinic)
        if vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")  # what autovacuum would have done; also flushes GIN pending lists
        client = inprocess.verified_client(ADMIN, PASSWORD)
        scale = {
            "total_users": clinics * args.per_clinic,
            "clinic_users": args.per_clinic,
            "clinics": clinics,
            "seed_seconds": round(seconds, 1),
            "pages": measure_pages(client, per_clinic=args.per_clinic, iterations=args.iterations),
        }
        # Rebuilding the trigram index at a million users takes ~10 s: up to 100,000 only.
        if vendor == "postgresql" and clinics * args.per_clinic <= 100_000:
            scale["search_indexes"] = measure_search_indexes(client, iterations=args.iterations)
        if vendor == "postgresql" and clinics == scales[-1]:
            measured = scale["pages"]
            slowest = sorted(measured, key=lambda name: measured[name]["median_ms"], reverse=True)[:2]
            scale["plans_of_the_two_slowest_pages"] = save_plans(
                client, {name: measured[name]["path"] for name in slowest}, label=f"{clinics * args.per_clinic}-users", directory=args.plans_dir
            )
        result["scales"].append(scale)
    write_json(args.out, result)


if __name__ == "__main__":
    main()
