"""Every API error code with its HTTP status, and the one error shape (DESIGN.md §11).

    {"error": {"code", "message", "details", "timestamp", "request_id"}}

Services raise ``ApiError`` subclasses (or ``ApiError(code=...)``); the DRF exception handler
and the Django error views below turn every failure — DRF's own, Django's 404/500, a database
that is down — into that shape.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import Http404, HttpRequest, HttpResponseServerError, JsonResponse
from django.template import loader
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import bad_request, page_not_found, permission_denied, server_error
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from config.errors import DomainError
from config.logging import request_id_var

logger = logging.getLogger("agentry.api")


def set_rollback() -> None:
    """DRF's ``rest_framework.views.set_rollback``: an error answer rolls back an atomic request.

    Not imported from DRF: importing ``rest_framework.views`` loads DEFAULT_PERMISSION_CLASSES,
    i.e. ``accounts.access``, which raises ``ApiError`` from this module (an import circle).
    """
    for db in connections.all(initialized_only=True):
        if db.settings_dict["ATOMIC_REQUESTS"] and db.in_atomic_block:
            db.set_rollback(True)


# code -> (HTTP status, default message). The reference's codes first, then the generic ones.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "AgentNotFound": (404, "Agent not found."),
    "InvalidAgentConfig": (400, "The agent configuration is invalid."),
    "AgentCreationFailed": (500, "The agent could not be created."),
    "VersionConflict": (409, "A published version cannot be changed."),
    "DuplicateAgentName": (409, "An agent with this name already exists in the organization."),
    "ExecutionFailed": (500, "The execution failed."),
    "ExecutionTimeout": (504, "The execution exceeded its time limit."),
    "InvalidInput": (400, "The input is invalid."),
    "ResourceExhausted": (429, "A quota or rate limit was reached."),
    "ChainExecutionFailed": (500, "The chain execution failed."),
    "InsufficientPermissions": (403, "You do not have permission to do this."),
    "AgentAccessDenied": (403, "The token does not have the scope this operation needs."),
    "OrganizationLimitExceeded": (403, "The organization has reached a limit of its plan."),
    "PlanFeatureUnavailable": (403, "The organization's plan does not include this feature."),
    # Never disclosed as such: an agent outside the caller's visibility is simply not found.
    "VisibilityViolation": (404, "Not found."),
    # Generic codes.
    "NotFound": (404, "Not found."),
    "Conflict": (409, "The resource changed or was already resolved."),
    "IdempotencyKeyMismatch": (422, "This Idempotency-Key was already used with a different request."),
    "PreconditionFailed": (412, "The resource changed since you read it (If-Match)."),
    "NotAuthenticated": (401, "Authentication credentials were not provided."),
    "InvalidToken": (401, "The token is not valid."),
    "TokenExpired": (401, "The token has expired."),
    "TokenRevoked": (401, "The token has been revoked."),
    "MalformedRequest": (400, "The request body is not valid JSON."),
    "MethodNotAllowed": (405, "Method not allowed."),
    "NotAcceptable": (406, "Cannot satisfy the Accept header."),
    "UnsupportedMediaType": (415, "Unsupported media type; send application/json."),
    "PayloadTooLarge": (413, "The request body is too large."),
    "RateLimitExceeded": (429, "Too many requests; slow down."),
    "ServiceUnavailable": (503, "A backing service is unavailable; retry shortly."),
    "InternalError": (500, "An unexpected error occurred."),
}


def status_for(code: str) -> int:
    return ERROR_CODES[code][0]


class ApiError(Exception):
    """An error with a code of ERROR_CODES; raise it from services and views."""

    code = "InternalError"

    def __init__(self, message: str | None = None, *, code: str | None = None, details: dict | None = None):
        if code is not None:
            self.code = code
        if self.code not in ERROR_CODES:
            raise ValueError(f"unknown error code {self.code!r}")
        self.message = message or ERROR_CODES[self.code][1]
        self.details = details or {}
        super().__init__(self.message)

    @property
    def status_code(self) -> int:
        return status_for(self.code)


class NotFound(ApiError):
    code = "NotFound"


class InvalidInput(ApiError):
    code = "InvalidInput"

    def __init__(self, message: str | None = None, *, validation_errors: dict | None = None, **kw: Any):
        details = kw.pop("details", None) or {}
        if validation_errors:
            details["validation_errors"] = validation_errors
        super().__init__(message, details=details, **kw)


class Conflict(ApiError):
    code = "Conflict"


class InsufficientPermissions(ApiError):
    code = "InsufficientPermissions"


class ResourceExhausted(ApiError):
    code = "ResourceExhausted"


def error_text(exc: ApiError) -> str:
    """The error as lines of text for a terminal (management commands), not a Python dict:
    the message, then one ``field: problem`` line per validation error and ``key: value``
    per other detail."""
    lines = [exc.message]
    details = dict(exc.details or {})
    for field, problems in (details.pop("validation_errors", None) or {}).items():
        for problem in problems if isinstance(problems, list) else [problems]:
            lines.append(f"  {field}: {problem}")
    for key, value in details.items():
        if isinstance(value, dict):  # a schema, say: as JSON, which the reader can reuse
            shown = json.dumps(value, default=str, ensure_ascii=False)
        elif isinstance(value, (list, tuple)):
            shown = ", ".join(str(v) for v in value)
        else:
            shown = str(value)
        lines.append(f"  {key}: {shown}")
    return "\n".join(lines)


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "timestamp": timezone.now().isoformat(),
            "request_id": request_id_var.get(),
        }
    }


def error_response(code: str, message: str | None = None, details: dict | None = None, **kw: Any) -> JsonResponse:
    status, default = ERROR_CODES[code]
    response = JsonResponse(error_body(code, message or default, details), status=status, **kw)
    return response


def _normalise_errors(detail: Any) -> dict[str, list[str]]:
    """DRF's nested ErrorDetail structure -> {"field.path": ["message", ...]}."""
    flat: dict[str, list[str]] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(sub, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list) and value and all(not isinstance(v, (dict, list)) for v in value):
            flat.setdefault(path or "non_field_errors", []).extend(str(v) for v in value)
        elif isinstance(value, list):
            for index, sub in enumerate(value):
                walk(sub, f"{path}.{index}" if path else str(index))
        else:
            flat.setdefault(path or "non_field_errors", []).append(str(value))

    walk(detail, "")
    return flat


_DRF_CODES: dict[type[Exception], str] = {
    drf_exceptions.ParseError: "MalformedRequest",
    drf_exceptions.NotAuthenticated: "NotAuthenticated",
    drf_exceptions.AuthenticationFailed: "InvalidToken",
    drf_exceptions.PermissionDenied: "InsufficientPermissions",
    drf_exceptions.NotFound: "NotFound",
    drf_exceptions.MethodNotAllowed: "MethodNotAllowed",
    drf_exceptions.NotAcceptable: "NotAcceptable",
    drf_exceptions.UnsupportedMediaType: "UnsupportedMediaType",
    drf_exceptions.Throttled: "RateLimitExceeded",
}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF EXCEPTION_HANDLER: every exception becomes the error shape."""
    headers: dict[str, str] = {}
    if isinstance(exc, (ApiError, DomainError)):
        code, message, details = exc.code, exc.message, exc.details
    elif isinstance(exc, drf_exceptions.ValidationError):
        code, message = "InvalidInput", "The request has invalid fields."
        details = {"validation_errors": _normalise_errors(exc.detail)}
    elif isinstance(exc, DjangoValidationError):
        code, message = "InvalidInput", "The request has invalid fields."
        details = {
            "validation_errors": _normalise_errors(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
        }
    elif isinstance(exc, Http404):
        code, message, details = "NotFound", ERROR_CODES["NotFound"][1], {}
    elif isinstance(exc, DjangoPermissionDenied):
        code, message, details = "InsufficientPermissions", ERROR_CODES["InsufficientPermissions"][1], {}
    elif isinstance(exc, drf_exceptions.APIException):
        code = (
            getattr(exc, "agentry_code", None)
            or _DRF_CODES.get(type(exc))
            or next((c for klass, c in _DRF_CODES.items() if isinstance(exc, klass)), "InternalError")
        )
        message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else ERROR_CODES[code][1]
        details = {}
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf_exceptions.Throttled) and wait is not None:
            headers["Retry-After"] = str(int(wait) + 1)
            details = {"retry_after_seconds": int(wait) + 1}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    elif isinstance(exc, (OperationalError, InterfaceError)):
        logger.error("database unavailable", exc_info=exc)
        code, message, details = "ServiceUnavailable", "The database is unavailable; retry shortly.", {}
        headers["Retry-After"] = "5"
    elif isinstance(exc, DatabaseError):
        logger.exception("database error", exc_info=exc)
        code, message, details = "InternalError", ERROR_CODES["InternalError"][1], {}
    else:
        logger.exception("unhandled error", exc_info=exc)
        code, message, details = "InternalError", ERROR_CODES["InternalError"][1], {}
    set_rollback()
    return Response(error_body(code, message, details), status=status_for(code), headers=headers)


# --- Django-level views (URLs that never reach DRF) --------------------------------------


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def handler404(request: HttpRequest, exception: Exception | None = None):
    if _wants_json(request):
        return error_response("NotFound")

    return page_not_found(request, exception or Http404())


def handler500(request: HttpRequest):
    if _wants_json(request):
        return error_response("InternalError")
    # The plain page (templates/500.html), never the error's details; the request id is what
    # a person can quote to whoever reads the log, where the traceback is.
    try:
        page = loader.get_template("500.html").render({"request_id": request_id_var.get()})
    except Exception:
        return server_error(request)  # Django's own one-line page
    return HttpResponseServerError(page)


def handler400(request: HttpRequest, exception: Exception | None = None):
    if _wants_json(request):
        return error_response("MalformedRequest", "Bad request.")

    return bad_request(request, exception or Exception())


def handler403(request: HttpRequest, exception: Exception | None = None):
    if _wants_json(request):
        return error_response("InsufficientPermissions")

    return permission_denied(request, exception or DjangoPermissionDenied())


@csrf_exempt  # no form posts here: a DELETE to an unknown API path is a 404, not a CSRF page
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return error_response("NotFound", f"No API endpoint at {request.path}.")
