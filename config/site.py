"""The installation's public address, for links that leave the browser (e-mails).

``AGENTRY_BASE_URL`` when set. Otherwise the address people reach this installation at, as
the last request to a host of ``ALLOWED_HOSTS`` showed it (remembered in the cache by
``SiteAddressMiddleware``, so a worker sending an e-mail knows it too), and before any request
the address ``make run`` serves (``http://localhost:$PORT``). A Host header is only trusted
when ``ALLOWED_HOSTS`` names the hosts: with ``*`` anyone could choose the links others get.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

CACHE_KEY = "agentry:site:base-url"
_remembered = ""  # what this process last wrote: one cache write per new address, not per request


def _configured() -> str:
    return (getattr(settings, "AGENTRY_BASE_URL", "") or "").rstrip("/")


def base_url() -> str:
    """``scheme://host[:port]`` without a trailing slash."""
    configured = _configured()
    if configured:
        return configured
    try:
        seen = cache.get(CACHE_KEY)
    except Exception:  # the cache is a convenience here: a link to localhost beats no e-mail
        logger.debug("site address: cache unavailable", exc_info=True)
        seen = None
    return seen or f"http://localhost:{os.environ.get('PORT', '8000')}"


def answer_base_url(request_base_url: str) -> str:
    """For links in the answer to a request (the doors' approval links, an Agent Card's
    address): ``AGENTRY_BASE_URL`` when set, else the address that request came to — the
    caller is pointed back where it already is, so its Host header chooses nobody else's links."""
    return _configured() or request_base_url.rstrip("/")


def absolute_url(path: str) -> str:
    return base_url() + (path if path.startswith("/") else f"/{path}")


def remember_request_address(request: HttpRequest) -> None:
    global _remembered
    if getattr(settings, "AGENTRY_BASE_URL", "") or "*" in settings.ALLOWED_HOSTS:
        return
    try:
        address = f"{request.scheme}://{request.get_host()}"
    except DisallowedHost:
        return  # refused by CommonMiddleware anyway
    if address == _remembered:
        return
    try:
        cache.set(CACHE_KEY, address, timeout=None)
    except Exception:
        logger.debug("site address: cache unavailable", exc_info=True)
        return
    _remembered = address


class SiteAddressMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        remember_request_address(request)
        return self.get_response(request)
