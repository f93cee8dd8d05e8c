"""Helpers of the lists that write plain rows (``values_list`` tuples) instead of model
instances through a serializer: the same output, without the per-row and per-field cost."""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from typing import Any

from django.db.models import TextField
from django.db.models.functions import Cast


def iso_datetime(value: datetime | None, tz: tzinfo) -> str | None:
    """What DRF's DateTimeField writes (ISO 8601 in ``tz``, ``Z`` for UTC), without its
    per-call look-ups of the settings and the current time zone: take ``tz`` once a page
    (``django.utils.timezone.get_current_timezone()``)."""
    if value is None:
        return None
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def json_text(column: str) -> Cast:
    """A JSON column read as its text: decoded by ``json_value``, not by Django's converter."""
    return Cast(column, TextField())


def json_value(text: str | None) -> Any:
    """A JSON column's text (``json_text``) decoded as Django's JSONField decodes it; the
    empty list and object, most of a row's JSON, without the decoder."""
    if text is None:
        return None
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return json.loads(text)
