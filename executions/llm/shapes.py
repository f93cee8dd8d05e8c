"""Reading what a provider sent, field by field, without trusting its shape.

The SDKs build their response objects without validation: a field may be missing, of another
type, or the whole answer a string (a server that answered HTML with HTTP 200). The adapters
read every field through these helpers, which answer None for what is not there and raise
``BadShape`` for what is there with the wrong type; the adapters turn both into an
``LLMInvalidResponse`` naming what was wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Raised by the SDKs' objects or our reading when an answer has another shape than expected.
SHAPE_ERRORS = (AttributeError, TypeError, ValueError, KeyError, IndexError)
_SCALARS = (str, bytes, int, float, bool, list, tuple)


class BadShape(Exception):
    """A field of the answer is there but not of the type its protocol says."""


def has_fields(value: Any) -> bool:
    """Whether ``value`` is an object at all (not a string, number or list where one was due)."""
    return value is not None and not isinstance(value, _SCALARS)


def field_of(value: Any, name: str) -> Any:
    """``value.name`` of an SDK object (or ``value[name]`` of a plain dict); None for a value
    that has no such field, including strings, numbers and lists, whose methods are not fields."""
    if not has_fields(value):
        return None
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def optional_text(value: Any, what: str) -> str:
    """A text field: "" when absent, else it must be a string."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadShape(f"{what} is not text")
    return value


def count_of(value: Any, name: str) -> int:
    """A token count: 0 when absent; a number otherwise (some servers send floats)."""
    count = field_of(value, name)
    if count is None:
        return 0
    if isinstance(count, bool) or not isinstance(count, int | float):
        raise BadShape(f"the usage's {name} is not a number")
    return int(count)
