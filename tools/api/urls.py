from django.urls import path
from rest_framework.routers import DefaultRouter

from tools.api.mcp import McpServerViewSet
from tools.api.views import (
    AgentCapabilitiesView,
    EmailTemplateViewSet,
    ModuleEndpointViewSet,
    NotificationViewSet,
    ToolCallViewSet,
    ToolViewSet,
)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("tools", ToolViewSet, basename="tool")
router.register("tool-calls", ToolCallViewSet, basename="tool-call")
router.register("module-endpoints", ModuleEndpointViewSet, basename="module-endpoint")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("mcp-servers", McpServerViewSet, basename="mcp-server")
router.register("email-templates", EmailTemplateViewSet, basename="email-template")

urlpatterns = [
    path("agents/<str:agent_id>/capabilities/", AgentCapabilitiesView.as_view(), name="agent-capabilities"),
    *router.urls,
]
