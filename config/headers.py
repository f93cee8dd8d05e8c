"""Security headers: a Content-Security-Policy on every HTML page, ``Cache-Control: no-store``
on whatever a signed-in person or token is shown, and no URL list on a 404 with DEBUG on.

Django 6 has a CSP of its own; on 5.2 this small middleware does the part we need. Scripts
only from this origin (no inline script, no ``eval``): that is what stops an injected
``<script>``. Inline styles stay allowed: the admin's change list, our templates and
Redoc (styled-components writes ``<style>`` elements at run time) use them, and with
``img-src``/``connect-src`` limited to this origin an injected style has nowhere to send
anything. A view that needs more says so with ``csp_allow`` (the Redoc page's web worker).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

from config.api import errors

CONTENT_SECURITY_POLICY: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def csp_header(extra: dict[str, str] | None = None) -> str:
    policy = dict(CONTENT_SECURITY_POLICY)
    for directive, sources in (extra or {}).items():
        policy[directive] = f"{policy[directive]} {sources}" if directive in policy else f"'self' {sources}"
    return "; ".join(f"{directive} {sources}" for directive, sources in policy.items())


def csp_allow(extra: dict[str, str]) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Widen the policy for one view: ``csp_allow({"worker-src": "blob:"})(view)``."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = view(request, *args, **kwargs)
            response.csp_extra = extra  # type: ignore[attr-defined]
            return response

        return wrapped

    return decorator


def _is_html(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("text/html")


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.DEBUG and response.status_code == 404 and _is_html(response):
            # Django's DEBUG 404 page lists every URL pattern (and names the view that
            # raised); the page people see in production is the one they get here too.
            response = errors.handler404(request, Http404())
        if _is_html(response) and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = csp_header(getattr(response, "csp_extra", None))
        # Run data, approvals, tokens: nothing shown to someone signed in is kept by a browser
        # or a proxy (the back button on a shared computer, a caching proxy). DRF puts the
        # token's user on the request too.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "Cache-Control" not in response:
            add_never_cache_headers(response)
        return response
