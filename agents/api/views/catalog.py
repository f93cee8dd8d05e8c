"""The marketplace, platform agents with their configuration, templates, role mapping."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import role_permissions
from accounts.access import AccessRules, request_actor
from agents import selectors, services
from agents.access import agent_rights
from agents.api.serializers import (
    AgentDetailSerializer,
    AgentTemplateSerializer,
    ConfigurationInputSerializer,
    CopyInputSerializer,
    MarketplaceAgentDetailSerializer,
    MarketplaceAgentSerializer,
    PlatformAgentSerializer,
)
from agents.api.views.base import READ
from agents.models import Agent, AgentConfiguration, AgentTemplate
from config.api.inputs import valid_input


class MarketplaceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Public agents of every organization and of the platform, copyable into one's own."""

    permission_classes = [AccessRules]
    access_rules = {"list": READ, "retrieve": READ, "copy": ("agents:write", "agents.add_agent")}
    serializer_class = MarketplaceAgentSerializer
    queryset = Agent.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.marketplace_list().order_by("name", "id")

    def get_object(self) -> Agent:
        return selectors.marketplace_get(agent_id=self.kwargs["pk"])

    def get_serializer_class(self):
        return MarketplaceAgentDetailSerializer if self.action == "retrieve" else MarketplaceAgentSerializer

    @extend_schema(request=CopyInputSerializer, responses={201: AgentDetailSerializer})
    @action(detail=True, methods=["post"])
    def copy(self, request: Request, pk: str | None = None) -> Response:
        data = valid_input(CopyInputSerializer, request)
        actor = request_actor(request)
        agent = services.marketplace_agent_copy(actor=actor, source=self.get_object(), name=data.get("name"))
        agent = selectors.agent_get(actor=actor, agent_id=agent.pk)
        context = {"rights": agent_rights(actor, agent), "warnings": selectors.agent_warnings(agent)}
        return Response(AgentDetailSerializer(agent, context=context).data, status=status.HTTP_201_CREATED)


class PlatformAgentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Agents the platform provides, with this organization's configuration of each."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": ("agents:read", "agents.view_agent"),
        "retrieve": ("agents:read", "agents.view_agent"),
        "configuration": ("agents:read", "agents.view_agent"),
        "configuration_set": ("agents:write", "agents.manage_all_agents"),
        "configuration_delete": ("agents:write", "agents.manage_all_agents"),
    }
    serializer_class = PlatformAgentSerializer
    queryset = Agent.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        organization = request_actor(self.request).organization
        own = AgentConfiguration.objects.filter(organization=organization)
        return (
            selectors.platform_agent_list()
            .prefetch_related(Prefetch("configurations", queryset=own, to_attr="org_configurations"))
            .order_by("name", "id")
        )

    def get_object(self) -> Agent:
        found = selectors.platform_agent_get(agent_id=self.kwargs["pk"])
        return self.get_queryset().get(pk=found.pk)

    def _configuration(self, agent: Agent) -> Response:
        actor = request_actor(self.request)
        configuration = selectors.agent_configuration_get(organization=actor.organization, agent=agent)
        effective = selectors.agent_effective_config(version=agent.current_version, organization=actor.organization)  # type: ignore[arg-type]
        return Response(
            {
                "agent_id": str(agent.pk),
                "overrides": configuration.overrides if configuration else {},
                "is_active": configuration.is_active if configuration else False,
                "effective_config": effective,
            }
        )

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def configuration(self, request: Request, pk: str | None = None) -> Response:
        return self._configuration(self.get_object())

    @extend_schema(request=ConfigurationInputSerializer, responses=OpenApiTypes.OBJECT)
    @configuration.mapping.put
    def configuration_set(self, request: Request, pk: str | None = None) -> Response:
        data = valid_input(ConfigurationInputSerializer, request)
        agent = self.get_object()
        services.agent_configuration_set(
            actor=request_actor(request), agent=agent, overrides=data["overrides"], is_active=data["is_active"]
        )
        return self._configuration(agent)

    @extend_schema(request=None, responses={204: None})
    @configuration.mapping.delete
    def configuration_delete(self, request: Request, pk: str | None = None) -> Response:
        services.agent_configuration_delete(actor=request_actor(request), agent=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class AgentTemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The built-in starting points; ``agents/from-template/`` makes a draft from one."""

    permission_classes = [AccessRules]
    access_rules = {"list": READ, "retrieve": READ}
    serializer_class = AgentTemplateSerializer
    queryset = AgentTemplate.objects.none()
    lookup_field = "key"

    def get_queryset(self):
        return selectors.agent_template_list()

    def get_object(self) -> AgentTemplate:
        return selectors.agent_template_get(key=self.kwargs["key"])


class OrganizationRolesView(APIView):
    """GET: what each role may do here. PUT (owners): replace the overrides of admin,
    member and viewer, e.g. ``{"viewer": ["agents.view_agent"]}``; roles left out revert."""

    permission_classes = [AccessRules]
    access_rules = {"get": (None, None), "put": ("admin", None)}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response(role_permissions.organization_roles(organization=request_actor(request).organization))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def put(self, request: Request) -> Response:
        mapping: Any = request.data.get("roles", request.data) if isinstance(request.data, dict) else request.data
        return Response(role_permissions.role_permissions_set(actor=request_actor(request), mapping=mapping))
