"""Helpers of the lists that write plain rows (tuples read with one statement) instead of
model instances through a serializer: the same output, without the per-row and per-field
cost, nor the ORM's compilation of a statement of 40 to 70 columns per request."""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from typing import Any

import psycopg
from django.db import connections
from django.db.models import Model, QuerySet

_TIMESTAMPTZ = psycopg.adapters.get_loader(psycopg.adapters.types["timestamptz"].oid, psycopg.pq.Format.TEXT)


def select_columns(alias: str, model: type[Model], names: tuple[str, ...]) -> str:
    """``alias."column", ...`` of ``model``'s fields ``names`` (attribute names: ``agent_id``
    for a foreign key), for a statement of ``page_rows``."""
    fields = {f.attname: f.column for f in model._meta.concrete_fields}
    return ", ".join(f'{alias}."{fields[name]}"' for name in names)


def page_rows(queryset: QuerySet, select: str, offset: int, limit: int) -> list[tuple]:
    """The page ``[offset, offset + limit)`` of ``queryset`` as ``select`` reads it.

    The ORM writes only the statement of the page's ids (the queryset's filters, visibility
    and order, one column: cheap to compile); ``select`` - a fixed statement, ``{ids}`` where
    the ordered ids go as ``page(id, n)``, ``n`` their position - reads the rows in the same
    round trip. Compiling the 40 to 70 columns of a list through the ORM was a third of a
    list request's CPU. A DISTINCT queryset (django-filter's multiple choices) selects its
    ordering columns too, so its ids are read first, in a statement of their own."""
    ids = queryset.values_list("pk")[offset : offset + limit]
    connection = connections[queryset.db]
    if queryset.query.distinct:
        params: Any = [[pk for (pk,) in ids]]
        page = f"unnest(%s::{queryset.model._meta.pk.db_type(connection)}[]) WITH ORDINALITY AS page(id, n)"
    else:
        sql, params = ids.query.sql_with_params()
        page = f"unnest(ARRAY({sql})) WITH ORDINALITY AS page(id, n)"
    with connection.cursor() as cursor:
        # psycopg's own (compiled) loader of timestamptz: Django's, a Python subclass for the
        # ORM's time zone handling, was a third of the reading. Same instants (aware, in the
        # connection's UTC); the rows write them in the current time zone (iso_datetime).
        cursor.cursor.adapters.register_loader("timestamptz", _TIMESTAMPTZ)
        cursor.execute(select.format(ids=page), params)
        return cursor.fetchall()


def iso_datetime(value: datetime | None, tz: tzinfo) -> str | None:
    """What DRF's DateTimeField writes (ISO 8601 in ``tz``, ``Z`` for UTC), without its
    per-call look-ups of the settings and the current time zone: take ``tz`` once a page
    (``django.utils.timezone.get_current_timezone()``)."""
    if value is None:
        return None
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def json_value(text: str | None) -> Any:
    """A JSON column as read (Django has PostgreSQL's jsonb come as text) decoded as Django's
    JSONField decodes it; the empty list and object, most of a row's JSON, without the decoder."""
    if text is None:
        return None
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return json.loads(text)
