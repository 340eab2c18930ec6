"""Model instances from rows a cursor fetched, for the few statements that run on nearly every request.

Building a query through the ORM costs several times what running it costs for a one-row lookup by
key (the signed-in user with their clinic: 1.04 ms of CPU through select_related().get(), 0.30 ms
through Manager.raw(), 0.14 ms this way, in-process). Here the SQL is written once from the
models' own table and column names, and each row becomes instances through Model.from_db, as the
ORM makes them. The database driver gives every column as the ORM would, except SQLite's
datetimes, which come back naive: the database stores them in UTC, so they are made aware in UTC,
as Django's SQLite backend does (tests hold these instances to the ORM's, field for field).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timezone as dt_timezone

from django.db import connections, models
from django.utils import timezone


def select_list(model: type[models.Model]) -> str:
    """The model's concrete columns, table-qualified, in the order `fetch` reads them."""
    table = model._meta.db_table
    return ", ".join(f'"{table}"."{field.column}"' for field in model._meta.concrete_fields)


def fetch(models_per_row: Sequence[type[models.Model]], sql: str, params: Sequence, *, using: str) -> list[tuple]:
    """Run `sql` (selecting each model's `select_list`, one after the other, then any other columns)
    and return, per row, a tuple of instances followed by the other columns' values as the driver
    gives them; a model whose primary key is NULL in a row (an outer join that found nothing) is
    None there."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [_instances(models_per_row, row, using) for row in rows]


def scalar(sql: str, params: Sequence, *, using: str):
    """The first column of the first row (a count, say)."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _instances(models_per_row, row, using) -> tuple:
    instances, start = [], 0
    for model in models_per_row:
        fields = model._meta.concrete_fields
        values = list(row[start : start + len(fields)])
        start += len(fields)
        if values[fields.index(model._meta.pk)] is None:
            instances.append(None)
            continue
        for index, field in enumerate(fields):
            value = values[index]
            if isinstance(field, models.DateTimeField) and value is not None and timezone.is_naive(value):
                values[index] = timezone.make_aware(value, dt_timezone.utc)
        instances.append(model.from_db(using, [field.attname for field in fields], values))
    return (*instances, *row[start:])
