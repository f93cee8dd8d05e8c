from django.urls import path
from rest_framework.routers import DefaultRouter

from agents.api.views import (
    AgentTemplateViewSet,
    AgentViewSet,
    MarketplaceViewSet,
    OrganizationRolesView,
    PlatformAgentViewSet,
)
from agents.api.views.chains import ChainViewSet
from agents.api.views.connections import ProviderConnectionViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("agents", AgentViewSet, basename="agent")
router.register("marketplace", MarketplaceViewSet, basename="marketplace")
router.register("platform-agents", PlatformAgentViewSet, basename="platform-agent")
router.register("agent-templates", AgentTemplateViewSet, basename="agent-template")
router.register("provider-connections", ProviderConnectionViewSet, basename="provider-connection")
router.register("chains", ChainViewSet, basename="chain")

urlpatterns = [
    path("organization/roles/", OrganizationRolesView.as_view(), name="organization-roles"),
    *router.urls,
]
