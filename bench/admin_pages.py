"""Issue 7, part 3: the clinic's Users pages at 10,000 and 100,000 users.

Run with DATABASE_URL pointing at an empty database (SQLite or PostgreSQL):
migrates, seeds one clinic of 10,000 users, measures, grows to ten clinics
(100,000 users), measures again. On PostgreSQL the search is measured with
and without the trigram indexes of users/migrations (search_trigram_indexes).
"""

from __future__ import annotations

import argparse
import importlib

from bench import inprocess

SEARCH_TERM = "kowal"  # part of one surname of the seeded list: ~1 % of a clinic
ADMIN = "bench-c001-admin"


def trigram_migration():
    return importlib.import_module("users.migrations.0003_search_trigram_indexes")


def measure_pages(client, *, per_clinic: int, iterations: int) -> dict:
    from users.management.commands.seed_bench import bench_username
    from users.models import User

    member = User.objects.get(username=bench_username(1, per_clinic // 2 - 1))
    last_page = -(-User.objects.filter(clinic__name="Bench Clinic 001").count() // 50)
    pages = {
        "user_list": "/users/",
        "user_list_last_page": f"/users/?page={last_page}",
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
    """Search with the trigram indexes, then without (dropped), then put them back."""
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--per-clinic", type=int, default=10_000)
    parser.add_argument("--clinics", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()

    inprocess.setup_django()
    from django.db import connection

    from bench.common import PASSWORD, write_json

    inprocess.migrate()
    vendor = connection.vendor
    result = {"database": vendor, "per_clinic": args.per_clinic, "scales": []}
    for clinics in (1, args.clinics):
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
        if vendor == "postgresql":
            scale["search_indexes"] = measure_search_indexes(client, iterations=args.iterations)
        result["scales"].append(scale)
    write_json(args.out, result)


if __name__ == "__main__":
    main()
