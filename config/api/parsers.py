"""JSON bodies: size-limited, nesting-bounded, and free of what PostgreSQL cannot store.

``json_input_problem`` and ``json_loads_bounded`` are the same checks for JSON that arrives
any other way (a webhook's raw body, the approval page's edited parameters, admin forms).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

# Deeper than any body the API defines (an agent with its JSON Schemas nests ~10 to 20
# levels) and far below where Python's recursive json decoder and everything that walks the
# result (validators, serializers, the diff of two versions) reach the interpreter's
# recursion limit (~1,000 frames).
MAX_JSON_DEPTH = 64
NUL_MESSAGE = "Must not contain NUL characters (\\u0000); they cannot be stored."


class PayloadTooLarge(APIException):
    status_code = 413
    default_detail = "The request body is too large."
    agentry_code = "PayloadTooLarge"


class JsonInputError(ValueError):
    """JSON that parses but cannot be accepted; ``field`` is the dotted path of the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


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
    for nesting so deep that the decoder itself gives up), ValueError for invalid JSON."""
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


def invalid_json_input(problem: JsonInputError) -> Exception:
    # Imported here: config.api.errors imports DRF's views, which import this parser (the
    # DEFAULT_PARSER_CLASSES setting) while errors is still half-loaded.
    from config.api.errors import InvalidInput

    return InvalidInput(
        f"The request body cannot be accepted: {problem.field}: {problem.message}",
        validation_errors={problem.field: [problem.message]},
    )


class LimitedJSONParser(JSONParser):
    """JSON parser that reads at most API_MAX_BODY_BYTES (bodies without Content-Length too),
    refuses nesting deeper than MAX_JSON_DEPTH and NUL characters, naming where they are."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        limit = settings.API_MAX_BODY_BYTES
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
        try:
            return json_loads_bounded(codecs.decode(raw, encoding))
        except JsonInputError as problem:
            raise invalid_json_input(problem) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error: {exc}") from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
