"""Form fields with the API's input bounds, for the admin and the pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms.fields import InvalidJSONInput

from config.api.json_input import JsonInputError, json_loads_bounded


class BoundedJSONField(forms.JSONField):
    """``forms.JSONField`` that refuses what the API's parser refuses: nesting deeper than
    MAX_JSON_DEPTH (Django's parses it recursively: a RecursionError, a 500) and NUL
    characters (jsonb cannot store them: a database error, a 500)."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value not in self.empty_values and not self.disabled:
            try:
                json_loads_bounded(value)
            except JsonInputError as problem:
                raise forms.ValidationError(f"{problem.field}: {problem.message}", code="invalid") from None
            except ValueError as problem:
                # Where it broke, as the parser says it: "Expecting ',' delimiter at line 3, column 5".
                where = getattr(problem, "msg", None), getattr(problem, "lineno", None), getattr(problem, "colno", None)
                message = f"Not valid JSON: {where[0]} at line {where[1]}, column {where[2]}." if where[0] else None
                raise forms.ValidationError(
                    message or self.error_messages["invalid"], code="invalid", params={"value": value}
                ) from None
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)
