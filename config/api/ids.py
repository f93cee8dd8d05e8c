"""Ids from URLs and bodies: a malformed id is the same answer as an unknown one (404), never a
500 from the database's uuid cast, and another organization's id is unknown too."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from config.api.errors import NotFound

M = TypeVar("M", bound=Model)


def uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def one_or_not_found(queryset: QuerySet[M], value: Any, message: str, details: dict | None = None) -> M:
    """The row of ``queryset`` (already scoped to what the caller may see) with primary key
    ``value``; NotFound(``message``) when the id is malformed or not there."""
    pk = uuid_or_none(value)
    found = queryset.filter(pk=pk).first() if pk is not None else None
    if found is None:
        raise NotFound(message, details=details)
    return found
