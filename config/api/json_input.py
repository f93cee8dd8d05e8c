"""JSON from outside, bounded: nesting depth, and nothing PostgreSQL cannot store.

Plain Python (no Django), so every door can use it: the API's JSON parser
(``config.api.parsers``), a webhook's raw body, the approval page's edited parameters, admin
forms, and what a model sends as tool arguments (``executions.llm``).
"""

from __future__ import annotations

import json
import math
from typing import Any

# Deeper than any body the API defines (an agent with its JSON Schemas nests ~10 to 20
# levels) and far below where Python's recursive json decoder and everything that walks the
# result (validators, serializers, the diff of two versions) reach the interpreter's
# recursion limit (~1,000 frames).
MAX_JSON_DEPTH = 64
NUL_MESSAGE = "Must not contain NUL characters (\\u0000); they cannot be stored."


class JsonInputError(ValueError):
    """JSON that parses but cannot be accepted; ``field`` is the dotted path of the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message

    @property
    def is_nul(self) -> bool:
        return self.message == NUL_MESSAGE


def _dotted(path: tuple) -> str:
    shown = [str(key).replace("\x00", "\\u0000") for key in path[:10]]
    return ".".join(shown + (["…"] if len(path) > 10 else [])) or "body"


def json_input_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> JsonInputError | None:
    """The first thing wrong with a parsed JSON value: nesting over ``max_depth`` or a NUL
    character in a key or a string (PostgreSQL's text and jsonb refuse ``\\u0000``)."""
    stack: list[tuple[Any, int, tuple]] = [(value, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return JsonInputError(_dotted(path), NUL_MESSAGE)
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > max_depth:
            return JsonInputError(_dotted(path), f"Nests deeper than {max_depth} levels.")
        if isinstance(node, dict):
            for key, item in node.items():
                if isinstance(key, str) and "\x00" in key:
                    return JsonInputError(_dotted((*path, key)), NUL_MESSAGE)
                if isinstance(item, (dict, list, str)):
                    stack.append((item, depth + 1, (*path, key)))
        else:
            stack.extend(
                (item, depth + 1, (*path, index))
                for index, item in enumerate(node)
                if isinstance(item, (dict, list, str))
            )
    return None


def json_loads_bounded(text: str | bytes) -> Any:
    """``json.loads`` that raises JsonInputError for what ``json_input_problem`` refuses (and
    for nesting so deep that the decoder itself gives up), ValueError for invalid JSON
    (NaN and Infinity included: jsonb cannot hold them)."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise JsonInputError("body", f"Nests deeper than {MAX_JSON_DEPTH} levels.") from None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    # Most bodies need no walk: JSON spells NUL only as \u0000, and nesting needs brackets.
    if "\\u0000" not in text and text.count("{") + text.count("[") <= MAX_JSON_DEPTH:
        return value
    problem = json_input_problem(value)
    if problem is not None:
        raise problem
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# What PostgreSQL's jsonb cannot hold, spelled as JSON would if it could.
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def storable_json(value: Any) -> tuple[Any, int]:
    """(``value`` with what PostgreSQL cannot store replaced, how many replacements).

    For what the platform did not choose but must keep (a tool's answer, a hostile page's
    text): a NUL character in a string or a key becomes U+FFFD, the replacement character
    (replaced, not stripped, so a reader sees something was there); NaN and the infinities
    become the strings "NaN", "Infinity", "-Infinity". Input the platform may refuse is
    refused instead (``json_loads_bounded``)."""
    # Most answers need no walk: json.dumps spells NUL as \u0000 and the others as tokens.
    text = json.dumps(value, default=str)
    if "\\u0000" not in text and "NaN" not in text and "Infinity" not in text:
        return value, 0
    count = 0

    def clean(node: Any) -> Any:
        nonlocal count
        if isinstance(node, str):
            if "\x00" in node:
                count += node.count("\x00")
                return node.replace("\x00", "\ufffd")
            return node
        if isinstance(node, float) and not math.isfinite(node):
            count += 1
            return _NON_FINITE[repr(node)]
        if isinstance(node, dict):
            return {clean(key): clean(item) for key, item in node.items()}
        if isinstance(node, (list, tuple)):
            return [clean(item) for item in node]
        return node

    cleaned = clean(value)
    return (cleaned, count) if count else (value, 0)
