"""Request id on every request, response and log line; body size limit, NUL characters and
control characters in headers refused before any parsing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from config.api.errors import error_response
from config.api.json_input import NUL_MESSAGE
from config.logging import log_context_var, request_id_var

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Takes a well-formed ``X-Request-ID`` from the client or makes one; echoes it back.

    Also turns a database outage outside DRF views (admin, pages) into a 503 in the error
    shape for API paths, so the API answers 503 while PostgreSQL is down.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        # Set, not reset afterwards: Django logs 4xx/5xx responses after the middleware chain
        # returns, and those lines should carry the id too. The next request overwrites it.
        request_id_var.set(request_id)
        log_context_var.set({})
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)) and request.path.startswith("/api/"):
            response = error_response("ServiceUnavailable", "The database is unavailable; retry shortly.")
            response["Retry-After"] = "5"
            return response
        return None


class BodySizeLimitMiddleware:
    """Refuses, before anything reads the request: bodies over API_MAX_BODY_BYTES (413), NUL
    characters in the path, the query string or a page's form fields, and control characters
    in any header (400). PostgreSQL cannot store NUL, so wherever one reached a query it was a
    500 (an Idempotency-Key, an X-Organization). (JSON bodies are checked by the parser, which
    can say where in the body.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.API_MAX_BODY_BYTES
        is_api = request.path.startswith("/api/")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response("MalformedRequest", "Content-Length is not a number.")
        if length > limit and is_api:
            return error_response(
                "PayloadTooLarge",
                f"The request body is {length} bytes; the limit is {limit}.",
                {"limit_bytes": limit},
            )
        where, problem = _nul_in(request, forms=not is_api), NUL_MESSAGE
        if where is None:
            where, problem = _control_character_in_headers(request), CONTROL_MESSAGE
        if where is not None:
            if is_api:
                return error_response("InvalidInput", f"{where}: {problem}", {"validation_errors": {where: [problem]}})
            return HttpResponseBadRequest(f"{where}: {problem}", content_type="text/plain; charset=utf-8")
        return self.get_response(request)


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# RFC 9110 §5.5: a field value never holds a control character but the tab. A server in front
# (uvicorn) refuses most of them already; any other (a WSGI server, a proxy, a test client)
# must not reach a query. 0x80-0x9F stay allowed: headers arrive decoded as Latin-1, and
# those are bytes of UTF-8 text a client sent raw.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
CONTROL_MESSAGE = "Must not contain control characters (U+0000-U+001F, U+007F) other than the tab."
# The headers the API reads under a name of its own: named as the documentation spells them.
_HEADER_NAMES = {name.lower(): name for name in ("Idempotency-Key", "X-Organization", "If-Match", "Last-Event-ID")}


def _nul_in(request: HttpRequest, *, forms: bool) -> str | None:
    """Where a NUL character is: "path", or the name of the query parameter or form field."""
    if "\x00" in request.path_info:
        return "path"
    sources = [request.GET]
    if forms and request.method == "POST" and request.content_type in _FORM_TYPES:
        sources.append(request.POST)
    for source in sources:
        for name, values in source.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return name.replace("\x00", "\\u0000") or "(unnamed)"
    return None


def _control_character_in_headers(request: HttpRequest) -> str | None:
    """The name of the first header whose value holds a control character, if any."""
    for name, value in request.headers.items():
        if _CONTROL.search(value):
            shown = _CONTROL.sub("?", name)
            return _HEADER_NAMES.get(shown.lower(), shown)
    return None
