"""Querysets compiled to SQL once and run many times.

Django builds and compiles a queryset's SQL again on every evaluation. For the small indexed
lookups that My Profile runs on every view, that costs several times what the database does:
1.6 ms of CPU for the authenticator app's row against 0.09 ms to run its SQL (issue 16, measured
in-process on a 2-core machine; the page as a whole took 7.6 ms, Home 1.8). A PreparedQuery
builds its queryset with the ORM, so the SQL is exactly Django's, compiles it once per database,
and then runs that SQL with each call's values, turning the rows into models as `Manager.raw()`
would: by column name, through the ORM's own converters and `Model.from_db`; annotations become
attributes (as raw values: use them for numbers and text). How a statement's columns map onto the
model is worked out once per database connection (`model_reader`), not again for every call.

Each argument is declared with the model field whose type it has; its values are prepared for
the database as that field prepares them. Where each one goes in the SQL's parameters is found
by compiling the queryset once more per argument with only that argument's sample value changed:
exactly the positions that change are that argument's, and each must hold the value as the field
prepares it (a value the query transforms, a date taken from a datetime say, is refused); every
other position is a constant of the query. A queryset whose SQL depends on the values themselves
(an `__in` list of varying length) is refused when it is first compiled, as are an argument used
nowhere, and what raw() cannot give back as the queryset would (values(), select_related beyond
a related row's key, prefetch_related, none(), an annotation named as a column). Values the queryset captures when it
is built (timezone.now() inside the builder, the active time zone) stay as they were then: pass
them as arguments.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections, models, router, transaction
from django.db.models import QuerySet
from django.db.models.query import ModelIterable
from django.db.models.sql import UpdateQuery
from django.db.transaction import TransactionManagementError

_instances: weakref.WeakSet[_Prepared] = weakref.WeakSet()


class NotPreparable(ValueError):
    """The queryset cannot be compiled once for every value of its arguments."""


class _Prepared:
    """What PreparedQuery and PreparedUpdate share: declared arguments, SQL compiled once per
    database (forgotten on a settings change), and each call's values placed into its parameters."""

    def __init__(self, build: Callable, **arguments: models.Field):
        self._build = build
        self._arguments = arguments
        self._model: type[models.Model] | None = None
        self._compiled: dict[str, tuple[str, list, dict[int, str]]] = {}
        self._lock = threading.Lock()
        _instances.add(self)

    def _check_arguments(self, values: dict) -> None:
        if values.keys() != self._arguments.keys():
            raise TypeError(f"expected the arguments {sorted(self._arguments)}, got {sorted(values)}")

    def _params(self, values: dict, connection, constants: list, slots: dict[int, str]) -> list:
        params = list(constants)
        for position, name in slots.items():
            params[position] = self._arguments[name].get_db_prep_value(values[name], connection)
        return params

    def clear(self) -> None:
        with self._lock:
            self._compiled.clear()


class PreparedQuery(_Prepared):
    _locks_rows = False

    def __call__(self, **values) -> list[models.Model]:
        self._check_arguments(values)
        model, using, sql, constants, slots = self._compile()
        connection = connections[using]
        features = connection.features
        if self._locks_rows and features.has_select_for_update and features.supports_transactions and connection.get_autocommit():
            # As the ORM refuses it: outside a transaction the lock would end with the statement.
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with connection.cursor() as cursor:
            cursor.execute(sql, self._params(values, connection, constants, slots))
            rows = cursor.fetchall()
            read = model_reader(connection, model, tuple(column[0] for column in cursor.description))
        return [read(row) for row in rows]

    def _compile(self):
        using = self._database(self._model) if self._model is not None else None
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                queryset = self._build(**_samples(self._arguments, set()))
                self._model, self._locks_rows = queryset.model, queryset.query.select_for_update
                using = queryset.db
                compiled = self._compiled.get(using) or self._compile_for(queryset, using)
                self._compiled[using] = compiled
        sql, constants, slots = compiled
        return self._model, using, sql, constants, slots

    def _database(self, model) -> str:
        # As QuerySet.db chooses: a locking read goes where writes go.
        return router.db_for_write(model) if self._locks_rows else router.db_for_read(model)

    def _compile_for(self, queryset: QuerySet, using: str):
        _refuse_unsupported(queryset)
        if using != self._database(queryset.model):
            raise NotPreparable("the queryset must use the router's database for its model (no .using())")
        return _compile_with_slots(
            self._arguments,
            lambda samples: self._build(**samples).query.get_compiler(using=using).as_sql(),
            connections[using],
            base=queryset.query.get_compiler(using=using).as_sql(),
        )


class PreparedUpdate(_Prepared):
    """`queryset.update(**values)` compiled to SQL once: Django's own UPDATE, run with each call's values.

    `build(**arguments)` returns the queryset and the {field name: value} that `update()` would take
    (plain values, not expressions); its arguments are declared and placed as PreparedQuery's are.
    A call runs the UPDATE and returns the number of rows it changed. As with `update()`, no signals
    are sent. An update that reaches other tables (a join in its filter, a parent model's fields) is
    refused: Django runs a SELECT first for those.
    """

    def __call__(self, **values) -> int:
        self._check_arguments(values)
        using, (sql, constants, slots) = self._compile()
        connection = connections[using]
        with transaction.mark_for_rollback_on_error(using):  # as QuerySet.update()
            with connection.cursor() as cursor:
                cursor.execute(sql, self._params(values, connection, constants, slots))
                return cursor.rowcount

    def _update_query(self, samples):
        queryset, changes = self._build(**samples)
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values(changes)
        query.clear_select_clause()  # as update() does, once annotations are refused (below)
        return queryset, query

    def _compile(self):
        using = router.db_for_write(self._model) if self._model is not None else None
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                queryset, query = self._update_query(_samples(self._arguments, set()))
                self._model = queryset.model
                using = router.db_for_write(queryset.model)
                compiled = self._compiled.get(using) or self._compile_for(queryset, query, using)
                self._compiled[using] = compiled
        return using, compiled

    def _compile_for(self, queryset: QuerySet, query: UpdateQuery, using: str):
        queryset._for_write = True  # update() asks the router for the database writes go to
        if queryset.db != using:
            raise NotPreparable("the queryset must use the router's database for its model (no .using())")
        if query.is_sliced or query.combinator:
            raise NotPreparable("a sliced or combined queryset cannot be updated")
        if queryset.query.annotations:
            raise NotPreparable("annotations are not supported in an update")
        base = query.get_compiler(using=using).as_sql()
        if query.related_updates or query.count_active_tables() > 1:
            raise NotPreparable("the update reaches other tables: Django selects the rows first")
        return _compile_with_slots(
            self._arguments,
            lambda samples: self._update_query(samples)[1].get_compiler(using=using).as_sql(),
            connections[using],
            base=base,
        )


def _compile_with_slots(arguments: dict[str, models.Field], compile_sql, connection, *, base=None) -> tuple[str, list, dict[int, str]]:
    """The SQL `compile_sql(samples)` gives, its constant parameters, and which argument goes where
    (`base`: what it gives for the first samples, when that is known already)."""
    base_samples = _samples(arguments, set())
    base_sql, base = base or compile_sql(base_samples)
    slots = {}
    # One argument changed at a time: exactly its own positions may change, and each of them
    # must hold its value as the field prepares it, in both compilations. A value the query
    # transforms (a date taken from a datetime, a lower-cased text, an offset) matches nowhere.
    for name, field in arguments.items():
        changed_samples = _samples(arguments, {name})
        sql, params = compile_sql(changed_samples)
        if sql != base_sql or len(params) != len(base):
            raise NotPreparable("the SQL changes with the arguments' values")
        before = field.get_db_prep_value(base_samples[name], connection)
        after = field.get_db_prep_value(changed_samples[name], connection)
        changed = [position for position, pair in enumerate(zip(base, params)) if pair[0] != pair[1]]
        if not changed:
            raise NotPreparable(f"the argument {name!r} is never used in the SQL as it is given")
        for position in changed:
            if (base[position], params[position]) != (before, after):
                raise NotPreparable(f"parameter {position} changes with {name!r} but is not its value as given")
            if position in slots:
                raise NotPreparable(f"parameter {position} changes with both {slots[position]!r} and {name!r}")
            slots[position] = name
    return base_sql, list(base), slots


# Readers hold the connection's own converters (bound to it), so they are kept on the connection
# object, each thread's own, and go with it; a settings change starts a new generation.
_READERS = "_clinic_auth_model_readers"
_generation = 0


def model_reader(connection, model: type[models.Model], columns: Sequence[str]) -> Callable[[Sequence], models.Model]:
    """A function that makes a row of these columns into a `model` instance as `Manager.raw()` does:
    columns named as the model's fields become the instance (through the ORM's converters for this
    database and `Model.from_db`), any other column an attribute holding its raw value. Built once
    per connection, model and columns."""
    generation, readers = getattr(connection, _READERS, (None, None))
    if generation != _generation:
        readers = {}
        setattr(connection, _READERS, (_generation, readers))
    key = (model, tuple(columns))
    reader = readers.get(key)
    if reader is None:
        reader = readers[key] = _build_reader(connection, model, key[1])
    return reader


def _build_reader(connection, model, columns):
    to_column = connection.introspection.identifier_converter
    positions = {}
    for position, column in enumerate(columns):
        positions.setdefault(column, position)  # a name given twice: its first column, as raw() takes it
    fields = [field for field in model._meta.fields if to_column(field.column) in positions]
    if model._meta.pk not in fields:
        raise NotPreparable("the statement must select the primary key")
    field_positions = [positions[to_column(field.column)] for field in fields]
    names = [field.attname for field in fields]
    known = {to_column(field.column) for field in model._meta.fields}
    extras = [(column, position) for position, column in enumerate(columns) if column not in known]
    converters = []
    for field, position in zip(fields, field_positions):
        expression = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if functions:
            converters.append((position, functions, expression))
    using = connection.alias

    def read(row):
        if converters:
            row = list(row)
            for position, functions, expression in converters:
                value = row[position]
                for convert in functions:
                    value = convert(value, expression, connection)
                row[position] = value
        instance = model.from_db(using, names, [row[position] for position in field_positions])
        for column, position in extras:
            setattr(instance, column, row[position])
        return instance

    return read


def _refuse_related_columns(queryset: QuerySet) -> None:
    """select_related only to lock related rows (`select_for_update(of=...)`): each related model may
    bring its primary key alone, in a column the model has too, which reads as the model's own (a
    name given twice is its first column, as raw() takes it). Anything more would be a second
    model per row, which raw() does not build."""
    compiler = queryset.query.chain().get_compiler(using=queryset.db)  # a copy: setting up joins changes a query
    compiler.setup_query()
    own_columns = {field.column for field in queryset.model._meta.concrete_fields}
    for related in compiler.klass_info.get("related_klass_infos", []):
        fields = [getattr(compiler.select[index][0], "target", None) for index in related["select_fields"]]
        pk = related["model"]._meta.pk
        if fields != [pk] or pk.column not in own_columns or related.get("related_klass_infos"):
            raise NotPreparable("select_related is supported only to lock a related row: .only() its primary key")


def _refuse_unsupported(queryset: QuerySet) -> None:
    """What raw() cannot give back as the queryset would."""
    query = queryset.query
    if queryset._iterable_class is not ModelIterable:
        raise NotPreparable("values() and values_list() are not supported: raw() builds models")
    if query.select_related:
        _refuse_related_columns(queryset)
    if queryset._prefetch_related_lookups:
        raise NotPreparable("prefetch_related is not supported")
    if query.is_empty():
        raise NotPreparable("an empty queryset (none()) has no SQL")
    columns = {field.column for field in queryset.model._meta.concrete_fields}
    clashes = columns & set(query.annotation_select)
    if clashes:
        raise NotPreparable(f"annotations named as a column would be read as that column: {sorted(clashes)}")


# Two values per type, far apart and different in every part (year to microsecond, digits, case and
# spaces), so that no transformation of one looks like the other. Offset per argument.
_SAMPLE_DATETIMES = (datetime(1901, 2, 3, 4, 5, 6, 70809), datetime(1987, 11, 23, 17, 43, 29, 517263))
_SAMPLE_INTEGERS = (-987_654_321, -123_456_789)
_SAMPLE_TEXTS = ("Prepared Query Sample A", "preparedquerysample b")


def _samples(arguments: dict[str, models.Field], changed: set[str]) -> dict:
    """A value per argument that no real row has: the second of its pair for those in `changed`."""
    samples = {}
    for index, (name, field) in enumerate(arguments.items()):
        variant = 1 if name in changed else 0
        if isinstance(field, models.DateTimeField):
            value = _SAMPLE_DATETIMES[variant] + timedelta(days=400 * index)
            samples[name] = value.replace(tzinfo=dt_timezone.utc) if settings.USE_TZ else value
        elif isinstance(field, models.IntegerField):
            samples[name] = _SAMPLE_INTEGERS[variant] - 1_000 * index
        elif isinstance(field, models.CharField):
            samples[name] = f"{_SAMPLE_TEXTS[variant]} {index}"
        else:
            raise NotPreparable(f"no sample values for a {type(field).__name__} argument")
    return samples


def _forget_compiled(**kwargs) -> None:
    # A test that overrides settings (USE_TZ, DATABASES) may change the SQL, its parameters or the converters.
    global _generation
    for query in list(_instances):
        query.clear()
    _generation += 1


setting_changed.connect(_forget_compiled)
