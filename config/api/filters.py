"""Filters shared by the API's filter sets."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend


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


# Query parameters a filter set reads under another name than its filters' (FromToFilterSet).
_ALIASES = {"from", "to"}


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, skipped when the request names none of the filter set's
    parameters and the set says what it gives such a request (an ``unfiltered(queryset)``
    classmethod): building the filter set - a deep copy of its filters and a form with its
    choice fields, per request - was a fifth of a list page's CPU. Opt-in, because a set may
    filter without parameters in more ways than an override of ``filter_queryset`` shows
    (the approvals list's ``qs`` keeps only pending requests by default). Any parameter of
    the set, valid or not, takes the full path (and its 400s)."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        unfiltered = getattr(filterset_class, "unfiltered", None)
        if unfiltered is None or _names_a_filter(request.query_params, (*filterset_class.base_filters, *_ALIASES)):
            return super().filter_queryset(request, queryset, view)
        return unfiltered(queryset)


def _names_a_filter(params, names: tuple[str, ...]) -> bool:
    # Range and lookup filters read suffixed parameters (``cost_min``, ``created_after``).
    return any(param == name or param.startswith(f"{name}_") for param in params for name in names)
