"""SQL queries per request for one settings variant (run with DJANGO_SETTINGS_MODULE set).

Uses the session cookie of a real, verified login, the test Client and
CaptureQueriesContext, in-process: the same settings the gunicorn variant runs.
"""

from __future__ import annotations

import argparse
import os
import re
import warnings

warnings.filterwarnings("ignore", message="No directory at")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--path", default="/home/")
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.common import write_json

    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = args.session
    first = client.get(args.path)
    if first.status_code != 200:
        raise SystemExit(f"{os.environ['DJANGO_SETTINGS_MODULE']}: GET {args.path} gave {first.status_code}")
    counts, statements = [], []
    for _ in range(args.iterations):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(args.path)
        assert response.status_code == 200
        counts.append(len(queries))
        statements = [_summary(q["sql"]) for q in queries.captured_queries]
    body = re.sub(rb'value="[^"]{64}"', b'value=""', response.content)  # CSRF tokens differ per request
    write_json(
        args.out,
        {
            "settings": os.environ["DJANGO_SETTINGS_MODULE"],
            "queries_per_request": max(counts),
            "queries_constant": len(set(counts)) == 1,
            "statements": statements,
            "body_bytes": len(body),
        },
    )


def _summary(sql: str) -> str:
    match = re.search(r'FROM "([a-z_]+)"', sql)
    verb = sql.split(None, 1)[0]
    return f"{verb} {match.group(1) if match else ''}".strip()


if __name__ == "__main__":
    main()
