"""Agents REST endpoints (API.md "Agents"). Thin: read with selectors, write with services.

Object-level rules (visibility, own agents, grants) are decided by the selectors and the
services, so ``access_rules`` here name a token scope and only the role permissions that
no grant can replace (creating agents, managing platform-agent configurations).
"""

from agents.api.views.agents import AgentViewSet
from agents.api.views.catalog import (
    AgentTemplateViewSet,
    MarketplaceViewSet,
    OrganizationRolesView,
    PlatformAgentViewSet,
)

__all__ = [
    "AgentTemplateViewSet",
    "AgentViewSet",
    "MarketplaceViewSet",
    "OrganizationRolesView",
    "PlatformAgentViewSet",
]
