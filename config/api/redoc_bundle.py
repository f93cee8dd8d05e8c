"""Redoc's bundle as the API docs page loads it: drf-spectacular-sidecar's copy, with the one
address it would fetch from the network (the Redocly logo of its side menu, from their CDN)
pointed at a copy served with our static files. The docs then load nothing from elsewhere,
which the page's Content-Security-Policy (connect/img-src 'self') requires anyway."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import drf_spectacular_sidecar
from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
BUNDLE = (
    Path(drf_spectacular_sidecar.__file__).parent / "static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
)
# What REDOC_DIST names (drf-spectacular appends /bundles/redoc.standalone.js).
DIST_URL = "/api/redoc/dist"


@lru_cache(maxsize=1)
def _bundle(logo_url: str) -> bytes:
    text = BUNDLE.read_text(encoding="utf-8")
    if CDN_LOGO not in text:
        # A new sidecar release moved it: the page's CSP still blocks the fetch, so nothing
        # leaks, but this module no longer does anything; say so where it is noticed.
        raise RuntimeError(f"{BUNDLE} no longer contains {CDN_LOGO}; update config/api/redoc_bundle.py")
    return text.replace(CDN_LOGO, logo_url).encode("utf-8")


@require_GET
@cache_control(public=True, max_age=86400)
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_bundle(static("console/redoc-logo-mini.svg")), content_type="application/javascript")
