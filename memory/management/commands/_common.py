"""Shared options of the memory maintenance commands."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import CommandError

from accounts.models import Organization


def organization_id(slug_or_id: str | None) -> Any:
    if not slug_or_id:
        return None

    field = "pk" if _is_uuid(slug_or_id) else "slug"
    found = Organization.objects.filter(**{field: slug_or_id}).values_list("pk", flat=True).first()
    if found is None:
        raise CommandError(f"No organization {slug_or_id!r}.")
    return found


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def agent_id(value: str | None) -> Any:
    if not value:
        return None
    if not _is_uuid(value):
        raise CommandError(f"--agent takes an agent id (a UUID), not {value!r}.")
    return value
