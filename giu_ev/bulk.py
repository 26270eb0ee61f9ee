"""Inserting many rows, and reading raw SQL values, without the ORM's per-query work.

For the charger frames that arrive by the thousand (docs/ocpp-testing.md,
"Where the portal's time goes"): on this project's 2-core machine, building
and compiling a query costs Django's ORM 0.5 to 1.5 ms of CPU (a two-row
``bulk_create`` of frame-log rows 0.48 ms, a ``select_related`` with one
subquery 1.5 ms), the same statements as plain SQL 0.05 to 0.12 ms. Only
metadata (quoted table and column names) goes into SQL text here; every
value is bound (or copied). Works on PostgreSQL and SQLite alike.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from django.db import connection, models
from django.utils import timezone
from django.utils.dateparse import parse_datetime


@dataclass(frozen=True)
class _Plan:
    """How rows of one model are read from instances and sent, worked out once."""

    columns: str
    fields: list[models.Field]
    read: Callable[[models.Model], tuple]
    preps: list[tuple[int, Callable[[Any], Any]]]
    auto_now: list[str]
    auto_now_add: list[str]


_plans: dict[type[models.Model], _Plan] = {}


def _plan(model: type[models.Model]) -> _Plan:
    plan = _plans.get(model)
    if plan is None:
        quote = connection.ops.quote_name
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        preps = [(i, _value_prep(f)) for i, f in enumerate(fields)]
        plan = _plans[model] = _Plan(
            columns=", ".join(quote(f.column) for f in fields),
            fields=fields,
            read=_reader([f.attname for f in fields]),
            preps=[(i, prep) for i, prep in preps if prep is not None],
            auto_now=[f.attname for f in fields if getattr(f, "auto_now", False)],
            auto_now_add=[
                f.attname for f in fields if getattr(f, "auto_now_add", False)
            ],
        )
    return plan


def _reader(attnames: list[str]) -> Callable[[models.Model], tuple]:
    if len(attnames) == 1:
        return lambda obj: (getattr(obj, attnames[0]),)
    return attrgetter(*attnames)


def _value_prep(field: models.Field) -> Callable[[Any], Any] | None:
    """How a value must be adapted for the database, or None if it goes as it is."""
    if isinstance(field, models.DateTimeField):
        # Looked up per call: ``connection`` is the running thread's.
        return lambda value: connection.ops.adapt_datetimefield_value(value)
    if isinstance(field, models.JSONField | models.DecimalField):
        return lambda value: field.get_db_prep_save(value, connection)
    return None


def rows_insert(model: type[models.Model], objs: Iterable[models.Model]) -> None:
    """INSERT unsaved instances with as little work per row as the database allows.

    What ``bulk_create`` does for the fields of these models (defaults set by
    the instances, ``auto_now``/``auto_now_add`` filled in), without returning
    primary keys or sending signals. A row that breaks a constraint fails the
    whole statement (IntegrityError), as ``bulk_create`` does.

    PostgreSQL gets the rows through COPY: a multi-row INSERT's text is too
    long for psycopg's statement cache, and splitting it again for every
    batch was a fifth of the OCPP bridge's CPU at 500 frames a second.
    """
    objs = list(objs)
    if not objs:
        return
    plan = _plan(model)
    now = timezone.now()
    rows = []
    for obj in objs:
        for attname in plan.auto_now:
            setattr(obj, attname, now)
        for attname in plan.auto_now_add:
            if getattr(obj, attname) is None:
                setattr(obj, attname, now)
        row = list(plan.read(obj))
        for index, prep in plan.preps:
            if row[index] is not None:
                row[index] = prep(row[index])
        rows.append(row)
    columns, fields = plan.columns, plan.fields

    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Django's execute() wraps driver errors; COPY must be wrapped by
            # hand (IntegrityError, and a broken connection marked as such).
            with (
                connection.wrap_database_errors,
                cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        one = "(" + ", ".join(["%s"] * len(fields)) + ")"
        size = max(1, connection.ops.bulk_batch_size(fields, rows))
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608
                + ", ".join([one] * len(chunk)),
                [value for row in chunk for value in row],
            )


def aware(value: datetime | str | None) -> datetime | None:
    """A datetime column read with raw SQL, as the ORM would return it.

    SQLite returns a subquery's datetime as text and stores UTC without a
    zone; PostgreSQL returns aware datetimes already.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


def json_value(value: Any) -> Any:
    """A JSON column read with raw SQL (both backends return it as text)."""
    return json.loads(value) if isinstance(value, str | bytes) else value
