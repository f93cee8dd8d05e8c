"""Filters shared by the API's filter sets."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, in UTC: PostgreSQL refuses offsets beyond ±15:59 (a 500 when
    passed through), and a moment that leaves the calendar in UTC is invalid input."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        try:
            return value.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise ValidationError("Enter a date and time between the years 1 and 9999.", code="invalid") from exc


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class FromToFilterSet(django_filters.FilterSet):
    """Takes the API's ``from`` and ``to`` query parameters (Python keywords, so not filter
    names) for the ``created_from`` / ``created_to`` filters a subclass declares."""

    def __init__(self, data=None, *args, **kwargs):
        if data is not None:
            data = data.copy()
            for public, field in (("from", "created_from"), ("to", "created_to")):
                if public in data:
                    data[field] = data.pop(public)[-1] if hasattr(data, "getlist") else data.pop(public)
        super().__init__(data, *args, **kwargs)
