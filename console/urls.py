"""The console's pages, mounted under /admin/ before the admin's catch-all (config/urls.py)."""

from django.contrib import admin
from django.urls import path

from console import views

urlpatterns = [
    path(
        "agents/agent/<uuid:agent_id>/playground/", admin.site.admin_view(views.playground), name="console-playground"
    ),
    path("console/agents/<uuid:agent_id>/run/", admin.site.admin_view(views.run), name="console-run"),
    path("console/executions/<uuid:execution_id>/rerun/", admin.site.admin_view(views.rerun), name="console-rerun"),
    path("console/executions/<uuid:execution_id>/stream/", admin.site.admin_view(views.stream), name="console-stream"),
    path(
        "console/approvals/<uuid:approval_id>/<str:decision>/",
        admin.site.admin_view(views.decide),
        name="console-decide",
    ),
    path(
        "console/provider-connections/<uuid:connection_id>/test/",
        admin.site.admin_view(views.test_provider_connection),
        name="console-test-provider-connection",
    ),
    path(
        "console/mcp-servers/<uuid:server_id>/test/",
        admin.site.admin_view(views.test_mcp_server),
        name="console-test-mcp-server",
    ),
]
