"""The pieces every part of the validation uses: the error collector and small checks."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from config.api.errors import ApiError

MAX_LIST_ITEMS = 200
TOOL_PATTERN = re.compile(r"^[A-Za-z0-9_.\-*]{1,120}$")


class Errors:
    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.by_field)


def invalid_config(errors: dict[str, list[str]], message: str = "The agent configuration is invalid.") -> ApiError:
    return ApiError(code="InvalidAgentConfig", message=message, details={"validation_errors": errors})


def is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def int_in(value: Any, low: int, high: int | None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)


def as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def str_list(config: dict, key: str, errors: Errors, *, pattern: re.Pattern | None = None, what: str = "") -> None:
    value = config.get(key)
    if not isinstance(value, list) or not is_str_list(value):
        errors.add(key, "Must be a list of strings.")
        return
    if len(value) > MAX_LIST_ITEMS:
        errors.add(key, f"At most {MAX_LIST_ITEMS} entries.")
    cleaned = []
    for index, item in enumerate(value):
        item = item.strip()
        if not item:
            errors.add(f"{key}.{index}", "Must not be empty.")
        elif pattern is not None and not pattern.match(item):
            errors.add(f"{key}.{index}", f"{item!r} is not a valid {what or 'entry'}.")
        elif item not in cleaned:
            cleaned.append(item)
    config[key] = cleaned
