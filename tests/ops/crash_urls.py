"""The platform's URLs plus a page and an API path that raise (tests/ops/crash_settings.py)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as platform_urlpatterns

CANARY = "canary-a8f3e1-in-a-local-variable"


def crash(request: HttpRequest) -> HttpResponse:
    # What Django's debug page would show: the traceback, this frame's locals, the settings.
    canary = CANARY
    databases = settings.DATABASES
    raise RuntimeError(f"the view failed with {canary} and {len(databases)} database(s)")


urlpatterns = [path("crash/", crash), path("api/v1/crash/", crash), *platform_urlpatterns]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
