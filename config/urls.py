from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.urls import include, path, re_path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts.api.views import ActivityLogViewSet, ApiTokenViewSet
from billing.api.usage import AlertViewSet, QuotaView, UsageView
from config.api.errors import api_not_found
from config.api.health import health
from config.api.redoc_bundle import redoc_bundle
from config.headers import csp_allow
from doors.openai.errors import not_found as openai_not_found

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("tokens", ApiTokenViewSet, basename="token")
router.register("activity", ActivityLogViewSet, basename="activity")
router.register("alerts", AlertViewSet, basename="alert")

api_v1: list = [
    path("health/", health, name="health"),
    path("usage/", UsageView.as_view(), name="usage"),
    path("usage/quota/", QuotaView.as_view(), name="usage-quota"),
    path("", include(router.urls)),
    path("", include("agents.api.urls")),
    path("", include("executions.api.urls")),
    path("", include("tools.api.urls")),
    path("", include("approvals.api.urls")),
    path("", include("memory.api.urls")),
]


def moved_admin_page(request: HttpRequest, model: str, rest: str) -> HttpResponsePermanentRedirect:
    """Organizations, memberships, tokens and the activity log moved from billing to accounts
    (issue #15): old admin links and bookmarks land on the same page."""
    query = request.META.get("QUERY_STRING", "")
    return HttpResponsePermanentRedirect(f"/admin/accounts/{model}/{rest}" + (f"?{query}" if query else ""))


urlpatterns = [
    path("", TemplateView.as_view(template_name="landing.html"), name="home"),
    # /metrics and /admin/dashboard/; before admin.site.urls, whose catch-all would answer 404.
    path("", include("ops.urls")),
    re_path(r"^admin/billing/(?P<model>organization|membership|apitoken|activitylog)/(?P<rest>.*)$", moved_admin_page),
    path("admin/", include("console.urls")),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script from this URL (?script) instead
    # of inline, so the page runs under script-src 'self'.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    # Redoc builds its search index in a web worker made from a blob: URL.
    path(
        "api/redoc/", csp_allow({"worker-src": "blob:"})(SpectacularRedocView.as_view(url_name="schema")), name="redoc"
    ),
    path("api/redoc/dist/bundles/redoc.standalone.js", redoc_bundle, name="redoc-bundle"),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("approvals/", include("approvals.pages.urls")),
    # The protocol doors: OpenAI-compatible endpoints (OpenAI's error shape) and A2A.
    path("openai/v1/", include("doors.openai.urls")),
    re_path(r"^openai/", openai_not_found),
    path("a2a/", include("doors.a2a.urls")),
    # Unknown API paths answer in the error shape even with DEBUG on.
    re_path(r"^api/", api_not_found),
]

handler400 = "config.api.errors.handler400"
handler403 = "config.api.errors.handler403"
handler404 = "config.api.errors.handler404"
handler500 = "config.api.errors.handler500"
