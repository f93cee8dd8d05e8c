"""OpenAI's error shape on the /openai/v1 paths: ``{"error": {"message", "type", "param", "code"}}``,
so an OpenAI SDK raises its usual exceptions (AuthenticationError, NotFoundError, ...).

Every failure the REST API would answer in DESIGN.md §11's shape is answered here with the
same HTTP status, its Agentry code as ``code``, and OpenAI's ``type`` for that status.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.response import Response
from rest_framework.views import set_rollback

from config.api.errors import exception_handler as agentry_exception_handler

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int, code: str = "") -> str:
    if code == "ResourceExhausted":
        return "insufficient_quota"  # a plan's quota or the agent's run limits, as OpenAI says it
    return TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def openai_error(message: str, *, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type(status, code), "param": param, "code": code}}


class OpenAIInvalid(Exception):
    """A request the door refuses, with the parameter at fault (400 unless told)."""

    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_request", status: int = 400):
        super().__init__(message)
        self.message, self.param, self.code, self.status = message, param, code, status


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """The views' DRF exception handler: the project's, reshaped."""
    if isinstance(exc, OpenAIInvalid):
        set_rollback()
        return Response(openai_error(exc.message, status=exc.status, code=exc.code, param=exc.param), status=exc.status)
    response = agentry_exception_handler(exc, context)
    if response is None:
        return None
    error = (response.data or {}).get("error") or {}
    code = str(error.get("code") or "InternalError")
    message = str(error.get("message") or "The request failed.")
    fields = ((error.get("details") or {}).get("validation_errors") or {}).keys()
    param = next(iter(fields), None)
    if fields:
        message += " " + "; ".join(f"{k}: {' '.join(v)}" for k, v in error["details"]["validation_errors"].items())
    response.data = openai_error(message, status=response.status_code, code=code, param=param)
    return response


@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown /openai/ paths, in OpenAI's shape."""
    return JsonResponse(
        openai_error(f"No endpoint at {request.method} {request.path}.", status=404, code="NotFound"), status=404
    )
