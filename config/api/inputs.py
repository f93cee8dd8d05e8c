"""What every view does with a request body before a service sees it: one JSON object, checked
by a serializer that refuses fields it does not know.

One rule for unknown fields everywhere (they were checked three ways): a field the serializer
does not declare is an error, at any nesting level, and it is reported together with the
errors of the fields it does know, so one answer lists everything wrong with the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from config.api.errors import InvalidInput

UNKNOWN_FIELD = "Unknown field."


class StrictFieldsMixin:
    """Refuses fields the serializer does not declare (a typo must not be silently ignored).

    Read-only fields count as declared: sending back what a GET returned is not an error."""

    fields: Any

    def to_internal_value(self, data: Any) -> Any:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        if not unknown:
            return super().to_internal_value(data)  # type: ignore[misc]
        errors: dict[str, Any] = {}
        try:
            super().to_internal_value(data)  # type: ignore[misc]
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, Mapping):
                errors.update(exc.detail)
        errors.update({key: [UNKNOWN_FIELD] for key in unknown})
        raise serializers.ValidationError(errors)


class StrictSerializer(StrictFieldsMixin, serializers.Serializer):
    """An input serializer: declared fields only (nested ones too)."""


def json_object_body(request: Request) -> dict[str, Any]:
    """The request's body, which must be one JSON object (not a list, a string or nothing)."""
    if not isinstance(request.data, dict):
        raise InvalidInput("The body must be a JSON object.")
    return dict(request.data)


def valid_input(serializer_class: type, request: Request, *, partial: bool = False) -> dict[str, Any]:
    """The body checked by ``serializer_class``: its validated data, or a 400 naming each field."""
    payload = serializer_class(data=json_object_body(request), partial=partial)
    payload.is_valid(raise_exception=True)
    return dict(payload.validated_data)
