"""Trigram indexes for the Users search, on PostgreSQL only.

The search matches a fragment anywhere in username, first name, last name or
email (icontains, which PostgreSQL runs as UPPER(col::text) LIKE UPPER('%q%')).
A B-tree index cannot serve a leading wildcard; a pg_trgm GIN index on the
same UPPER expression can. SQLite has no pg_trgm, so there this migration
does nothing (its search scans the clinic's rows through user_clinic_name_idx).
bench/admin_pages.py reuses CREATE_SQL and DROP_SQL to measure the effect.

Creating the pg_trgm extension needs a role allowed to create extensions
(a superuser, or a database owner on PostgreSQL 13+ since pg_trgm is trusted).
"""

from django.db import migrations

from ._postgresql import run_on_postgresql

SEARCH_COLUMNS = ("username", "first_name", "last_name", "email")

EXTENSION_SQL = "CREATE EXTENSION IF NOT EXISTS pg_trgm"
CREATE_SQL = [
    f'CREATE INDEX IF NOT EXISTS "users_user_{column}_trgm" ON "users_user" '
    f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
    for column in SEARCH_COLUMNS
]
DROP_SQL = [f'DROP INDEX IF EXISTS "users_user_{column}_trgm"' for column in SEARCH_COLUMNS]


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0002_login_throttle"),
    ]

    # Not django.contrib.postgres's TrigramExtension: its reverse queries pg_extension even on
    # SQLite. Going back drops the indexes and leaves the extension (others may use it).
    operations = [
        migrations.RunPython(run_on_postgresql([EXTENSION_SQL, *CREATE_SQL]), run_on_postgresql(DROP_SQL)),
    ]
