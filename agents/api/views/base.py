"""What every agents view shares: access-rule shorthands, input checking, 405 first."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from config.api.errors import InvalidInput

READ = ("agents:read", None)
WRITE = ("agents:write", None)
SEMVER_PATH = r"(?P<version>\d+\.\d+\.\d+)"


def valid_input(serializer_class: type, request: Request, *, partial: bool = False) -> dict[str, Any]:
    data = request.data if isinstance(request.data, dict) else None
    if data is None:
        raise InvalidInput("The body must be a JSON object.")
    payload = serializer_class(data=data, partial=partial)
    payload.is_valid(raise_exception=True)
    return dict(payload.validated_data)
