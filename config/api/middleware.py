"""Request id on every request, response and log line; body size limit before any parsing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from config.api.errors import error_response
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
    """Refuses bodies over API_MAX_BODY_BYTES with 413 before anything reads them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response("MalformedRequest", "Content-Length is not a number.")
        if length > limit and request.path.startswith("/api/"):
            return error_response(
                "PayloadTooLarge",
                f"The request body is {length} bytes; the limit is {limit}.",
                {"limit_bytes": limit},
            )
        return self.get_response(request)
