"""Querysets compiled to SQL once and run many times.

Django builds and compiles a queryset's SQL again on every evaluation. For the small indexed
lookups that My Profile runs on every view, that costs several times what the database does:
1.6 ms of CPU for the authenticator app's row against 0.09 ms to run its SQL (issue 16, measured
in-process on a 2-core machine; the page as a whole took 7.6 ms, Home 1.8). A PreparedQuery
builds its queryset with the ORM, so the SQL is exactly Django's, compiles it once per database,
and then runs that SQL with each call's values through `Manager.raw()`, which turns the rows
into models with the ORM's own converters and `Model.from_db`; annotations become attributes
(as raw values: use them for numbers and text).

Each argument is declared with the model field whose type it has; its values are prepared for
the database as that field prepares them. Where each one goes in the SQL's parameters is found
by compiling the queryset twice with different sample values: a position that changes with an
argument is that argument's, every other position must stay the same (a constant of the query).
A queryset whose SQL depends on the values themselves (say, an `__in` list of varying length)
is refused when it is first compiled, as is one that uses an argument nowhere.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.core.signals import setting_changed
from django.db import connections, models, router
from django.db.models import QuerySet
from django.db.transaction import TransactionManagementError

_instances: weakref.WeakSet[PreparedQuery] = weakref.WeakSet()


class NotPreparable(ValueError):
    """The queryset cannot be compiled once for every value of its arguments."""


class PreparedQuery:
    def __init__(self, build: Callable[..., QuerySet], **arguments: models.Field):
        self._build = build
        self._arguments = arguments
        self._model: type[models.Model] | None = None
        self._locks_rows = False
        self._compiled: dict[str, tuple[str, list, dict[int, str]]] = {}
        self._lock = threading.Lock()
        _instances.add(self)

    def __call__(self, **values) -> list[models.Model]:
        if values.keys() != self._arguments.keys():
            raise TypeError(f"expected the arguments {sorted(self._arguments)}, got {sorted(values)}")
        model, using, sql, constants, slots = self._compile()
        connection = connections[using]
        if self._locks_rows and connection.features.has_select_for_update and connection.get_autocommit():
            # As the ORM refuses it: outside a transaction the lock would end with the statement.
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(constants)
        for position, name in slots.items():
            params[position] = self._arguments[name].get_db_prep_value(values[name], connection)
        return list(model._default_manager.db_manager(using).raw(sql, params))

    def _compile(self):
        using = router.db_for_read(self._model) if self._model is not None else None
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                queryset = self._build(**_samples(self._arguments, 0))
                self._model, using = queryset.model, queryset.db
                self._locks_rows = queryset.query.select_for_update
                compiled = self._compiled.get(using) or self._compile_for(queryset, using)
                self._compiled[using] = compiled
        sql, constants, slots = compiled
        return self._model, using, sql, constants, slots

    def _compile_for(self, queryset: QuerySet, using: str):
        if queryset.query.select_related:
            raise NotPreparable("select_related is not supported: raw() builds one model per row")
        if using != router.db_for_read(queryset.model):
            raise NotPreparable("the queryset must read from the router's database for its model")
        connection = connections[using]
        first_sql, first = queryset.query.get_compiler(using=using).as_sql()
        other_samples = _samples(self._arguments, 1)
        other_sql, other = self._build(**other_samples).query.get_compiler(using=using).as_sql()
        if first_sql != other_sql or len(first) != len(other):
            raise NotPreparable("the SQL changes with the arguments' values")
        expected = {
            name: tuple(field.get_db_prep_value(samples[name], connection) for samples in (_samples(self._arguments, 0), other_samples))
            for name, field in self._arguments.items()
        }
        slots = {}
        for position, pair in enumerate(zip(first, other)):
            if pair[0] == pair[1]:
                continue
            names = [name for name, sample_pair in expected.items() if sample_pair == pair]
            if len(names) != 1:
                raise NotPreparable(f"parameter {position} changes with the values but matches no single argument")
            slots[position] = names[0]
        unused = set(self._arguments) - set(slots.values())
        if unused:
            raise NotPreparable(f"arguments never used in the SQL: {sorted(unused)}")
        return first_sql, list(first), slots

    def clear(self) -> None:
        with self._lock:
            self._compiled.clear()


def _samples(arguments: dict[str, models.Field], variant: int) -> dict:
    """Values no real row has, distinct per argument and per variant."""
    samples = {}
    for index, (name, field) in enumerate(arguments.items()):
        n = 2 * index + variant
        if isinstance(field, models.DateTimeField):
            samples[name] = datetime(1901, 2, 3, tzinfo=dt_timezone.utc) + timedelta(seconds=n + 1)
        elif isinstance(field, models.IntegerField):
            samples[name] = -987_654_000 - n
        elif isinstance(field, models.CharField):
            samples[name] = f"prepared-query-sample-{n}"
        else:
            raise NotPreparable(f"no sample values for a {type(field).__name__} argument")
    return samples


def _forget_compiled(**kwargs) -> None:
    # A test that overrides settings (USE_TZ, DATABASES) may change the SQL or its parameters.
    for query in list(_instances):
        query.clear()


setting_changed.connect(_forget_compiled)
