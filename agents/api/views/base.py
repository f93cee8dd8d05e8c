"""What every agents view shares: access-rule shorthands, input checking, 405 first."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import MethodNotAllowed
from rest_framework.request import Request

from config.api.errors import InvalidInput

READ = ("agents:read", None)
WRITE = ("agents:write", None)
SEMVER_PATH = r"(?P<version>\d+\.\d+\.\d+)"


class MethodCheckedFirst:
    """An HTTP method the view does not offer answers 405 before any permission check
    (AccessRules would otherwise refuse it as an action without a rule: 403)."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        action_map = getattr(self, "action_map", None)
        method = (request.method or "").lower()
        if action_map is not None and method not in action_map and method != "options":
            raise MethodNotAllowed(method.upper())
        super().initial(request, *args, **kwargs)  # type: ignore[misc]


def valid_input(serializer_class: type, request: Request, *, partial: bool = False) -> dict[str, Any]:
    data = request.data if isinstance(request.data, dict) else None
    if data is None:
        raise InvalidInput("The body must be a JSON object.")
    payload = serializer_class(data=data, partial=partial)
    payload.is_valid(raise_exception=True)
    return dict(payload.validated_data)
