"""Bounding and redacting data kept for people to read later (the activity log's request and
response data): values under a secret-looking key are replaced, strings are cut, nesting and
size are capped, so the log never holds a credential or an unbounded body."""

from __future__ import annotations

import json
import re
from typing import Any

REDACTED = "[redacted]"
SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[-_]?key|authorization|cookie|credential|private[-_]?key", re.I)
MAX_STRING = 1000
MAX_ITEMS = 50
MAX_DEPTH = 5
MAX_BYTES = 8000


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return "[nested too deep]"
        items = list(value.items())
        cleaned = {
            str(k)[:100]: (REDACTED if SECRET_KEY.search(str(k)) else _clean(v, depth + 1))
            for k, v in items[:MAX_ITEMS]
        }
        if len(items) > MAX_ITEMS:
            cleaned["[truncated]"] = f"{len(items) - MAX_ITEMS} more keys"
        return cleaned
    if isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            return "[nested too deep]"
        cleaned_list = [_clean(v, depth + 1) for v in list(value)[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            cleaned_list.append(f"[{len(value) - MAX_ITEMS} more items]")
        return cleaned_list
    if isinstance(value, str):
        return (
            value if len(value) <= MAX_STRING else value[:MAX_STRING] + f"… [{len(value) - MAX_STRING} more characters]"
        )
    if value is None or isinstance(value, bool | int | float):
        return value
    return _clean(str(value), depth)


def bounded_redacted(value: Any) -> Any:
    """``value`` with secrets replaced and every part bounded; at most ~MAX_BYTES of JSON."""
    cleaned = _clean(value, 0)
    text = json.dumps(cleaned, ensure_ascii=False, default=str)
    if len(text.encode()) <= MAX_BYTES:
        return cleaned
    return {"truncated": True, "original_bytes": len(text.encode()), "content": text[: MAX_BYTES // 2]}
