"""Part 5: the Audit Log's CSV export of 100,000 rows, in-process.

Seeds the rows with one INSERT … SELECT (so seeding costs the process no memory), signs a
clinic admin in through the real login and code pages, then streams the export through the
test Client: wall time, rows, bytes, the growth of the process's peak RSS
(resource.getrusage) and, in a second pass, Python's peak allocation during the stream
(tracemalloc). A response that loaded every row would grow both by hundreds of MB.

    DATABASE_URL=postgres://... python -m bench.audit_export --rows 100000 --out result.json
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

from bench import common, inprocess

USERNAME = "audit-bench-admin"


def seed(rows: int) -> int:
    from django.db import connection

    from clinic_auth.twofactor.totp import services
    from clinics.models import Clinic
    from users.models import User

    clinic = Clinic.objects.create(name="Audit Bench Clinic")
    admin = User(username=USERNAME, clinic=clinic, role=User.Role.CLINIC_ADMIN, email="a@example.com")
    admin.set_password(common.PASSWORD)
    admin.save()
    device = services.totp_setup_begin(user=admin)
    services.totp_confirm(user=admin, device_id=device.pk, token=inprocess.code_for(device), ip_address=None)
    table = "twofactor_auditevent"
    if connection.vendor == "postgresql":
        series, interval = "generate_series(1, %s) AS n", "now() - n * interval '1 second'"
    else:  # SQLite: a recursive CTE stands in for generate_series
        series = "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %s) SELECT n FROM s)"
        interval = "datetime('now', '-' || n || ' seconds')"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (created_at, action, actor_username, target_username, clinic_id, ip_address, detail) "
            f"SELECT {interval}, CASE WHEN n %% 3 = 0 THEN 'device_confirmed' ELSE 'code_throttled' END, "
            f"'admin', 'member' || (n %% 500), %s, '198.51.100.7', "
            f"CASE WHEN n %% 10 = 0 THEN '=HYPERLINK(\"x\")' ELSE 'detail ' || n END FROM {series}",
            [clinic.pk, rows],
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {table}")
    return clinic.pk


def stream(client, path: str) -> tuple[int, int, float]:
    started = time.perf_counter()
    response = client.get(path)
    assert response.status_code == 200 and response.streaming
    lines = size = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    return lines - 1, size, time.perf_counter() - started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    inprocess.setup_django()
    inprocess.migrate()
    from django.db import connection
    from django.urls import reverse

    seed_started = time.perf_counter()
    clinic_pk = seed(args.rows)
    seed_seconds = time.perf_counter() - seed_started
    client = inprocess.verified_client(USERNAME, common.PASSWORD)
    path = reverse("clinic_audit_log_csv", args=[clinic_pk])
    stream(client, path + "?action=device_confirmed")  # warm-up (imports, connection, plan)

    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows, size, seconds = stream(client, path)
    rss_after_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    rows_traced, _, traced_seconds = stream(client, path)
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rows == rows_traced >= args.rows, (rows, rows_traced)
    common.write_json(args.out, {
        "database": connection.vendor,
        "rows": rows,
        "csv_mb": round(size / 1e6, 1),
        "seed_seconds": round(seed_seconds, 1),
        "export_seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "peak_rss_mb_before": round(rss_before_kb / 1024, 1),
        "peak_rss_mb_after": round(rss_after_kb / 1024, 1),
        "peak_rss_growth_mb": round((rss_after_kb - rss_before_kb) / 1024, 1),
        "python_peak_alloc_mb_during_export": round(python_peak / 1e6, 1),
        "export_seconds_under_tracemalloc": round(traced_seconds, 2),
    })


if __name__ == "__main__":
    main()
