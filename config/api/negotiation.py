"""Content negotiation for views that also answer in something other than JSON."""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request


class ErrorsAsJson:
    """A view mixin: errors are JSON in the error shape whatever the request negotiated (a CSV
    export, an event stream), so a client branches on one format for every failure."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        renderer = getattr(request, "accepted_renderer", None)
        failed = getattr(response, "status_code", 200) >= 400
        if failed and renderer is not None and not isinstance(renderer, JSONRenderer):
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
