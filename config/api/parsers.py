"""JSON bodies: size-limited, nesting-bounded, and free of what PostgreSQL cannot store.

The checks themselves are ``config.api.json_input`` (plain Python, shared with every other door
JSON comes through); import them from there.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from config.api.errors import InvalidInput
from config.api.json_input import JsonInputError, json_loads_bounded


class PayloadTooLarge(APIException):
    status_code = 413
    default_detail = "The request body is too large."
    agentry_code = "PayloadTooLarge"


def invalid_json_input(problem: JsonInputError) -> Exception:
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
