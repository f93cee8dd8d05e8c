"""Tools REST endpoints (API.md "Tools"): the registry, the organization's HTTP tools, the
call log, agents' capability grants, module endpoints and the caller's notifications."""

from __future__ import annotations

import uuid
from typing import Any

import django_filters
from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccessRules, request_actor
from agents.selectors import agent_get, platform_agent_get
from config.api.errors import ApiError, NotFound
from config.api.inputs import valid_input
from tools import selectors, services
from tools.api.serializers import (
    CapabilitiesInputSerializer,
    CapabilitiesSerializer,
    EmailTemplateInputSerializer,
    EmailTemplateSerializer,
    EmailTemplateUpdateSerializer,
    HttpToolInputSerializer,
    HttpToolUpdateSerializer,
    ModuleEndpointInputSerializer,
    ModuleEndpointSerializer,
    ModuleEndpointUpdateSerializer,
    NotificationSerializer,
    ToolCallSerializer,
    ToolSerializer,
)
from tools.models import (
    AgentCapabilityGrant,
    EmailTemplate,
    HandlerType,
    ModuleEndpoint,
    Notification,
    Tool,
    ToolCall,
    ToolCallStatus,
)

READ = ("agents:read", "tools.view_tool")


class ToolFilter(django_filters.FilterSet):
    category = django_filters.CharFilter()
    handler_type = django_filters.ChoiceFilter(choices=HandlerType.choices)
    is_dangerous = django_filters.BooleanFilter()
    is_system = django_filters.BooleanFilter()
    is_active = django_filters.BooleanFilter()
    search = django_filters.CharFilter(method="filter_search")

    class Meta:
        model = Tool
        fields = ["category", "handler_type", "is_dangerous", "is_system", "is_active"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(display_name__icontains=value))


class ToolViewSet(viewsets.GenericViewSet):
    """System tools (read-only) and the organization's own HTTP tools (admins write)."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": READ,
        "retrieve": READ,
        "create": ("agents:write", "tools.add_tool"),
        "partial_update": ("agents:write", "tools.change_tool"),
        "destroy": ("agents:write", "tools.delete_tool"),
    }
    serializer_class = ToolSerializer
    filterset_class = ToolFilter
    queryset = Tool.objects.none()
    lookup_field = "name"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.tool_list(actor=request_actor(self.request))

    def _own(self) -> Tool:
        actor = request_actor(self.request)
        name = self.kwargs["name"]
        tool = Tool.objects.filter(organization=actor.organization, name=name).first()
        if tool is None:
            if Tool.objects.filter(organization__isnull=True, name=name).exists():
                raise ApiError(code="InsufficientPermissions", message="Built-in tools cannot be changed here.")
            raise NotFound(f"No tool {name!r}.", details={"tool": name})
        return tool

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ToolSerializer(page, many=True).data)

    def retrieve(self, request: Request, name: str) -> Response:
        return Response(ToolSerializer(selectors.tool_get(actor=request_actor(request), name=name)).data)

    @extend_schema(request=HttpToolInputSerializer, responses={201: ToolSerializer})
    def create(self, request: Request) -> Response:
        tool = services.http_tool_create(
            actor=request_actor(request), data=valid_input(HttpToolInputSerializer, request)
        )
        return Response(ToolSerializer(tool).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=HttpToolUpdateSerializer, responses=ToolSerializer)
    def partial_update(self, request: Request, name: str) -> Response:
        tool = self._own()
        data = valid_input(HttpToolUpdateSerializer, request, partial=True)
        return Response(
            ToolSerializer(services.http_tool_update(actor=request_actor(request), tool=tool, data=data)).data
        )

    def destroy(self, request: Request, name: str) -> Response:
        services.http_tool_delete(actor=request_actor(request), tool=self._own())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ToolCallFilter(django_filters.FilterSet):
    agent = django_filters.UUIDFilter(field_name="agent_id")
    execution = django_filters.UUIDFilter(field_name="execution_id")
    tool = django_filters.CharFilter(field_name="tool_name")
    status = django_filters.MultipleChoiceFilter(choices=ToolCallStatus.choices)

    class Meta:
        model = ToolCall
        fields = ["agent", "execution", "tool", "status"]


class ToolCallViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [AccessRules]
    access_rules = {"list": READ, "retrieve": READ}
    serializer_class = ToolCallSerializer
    filterset_class = ToolCallFilter
    queryset = ToolCall.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.tool_call_list(actor=request_actor(self.request))

    def get_object(self) -> ToolCall:
        try:
            pk = uuid.UUID(self.kwargs["pk"])
        except ValueError:
            raise NotFound("Tool call not found.") from None
        call = self.get_queryset().filter(pk=pk).first()
        if call is None:
            raise NotFound("Tool call not found.")
        return call


class AgentCapabilitiesView(APIView):
    """``agents/{id}/capabilities/``: what the agent may touch when it runs here."""

    permission_classes = [AccessRules]
    access_rules = {"get": READ, "put": ("agents:write", "tools.grant_capabilities")}

    def _agent(self, request: Request, agent_id: str) -> Any:
        actor = request_actor(request)
        try:
            return agent_get(actor=actor, agent_id=agent_id)
        except ApiError:
            # A platform agent gets its own grants in each organization that runs it.
            return platform_agent_get(agent_id=agent_id)

    def _body(self, agent: Any, request: Request) -> dict[str, Any]:
        grant = AgentCapabilityGrant.objects.filter(
            organization=request_actor(request).organization, agent=agent
        ).first()
        if grant is None:
            grant = AgentCapabilityGrant(agent=agent, capabilities=[])
        return dict(CapabilitiesSerializer(grant).data)

    @extend_schema(responses=CapabilitiesSerializer)
    def get(self, request: Request, agent_id: str) -> Response:
        return Response(self._body(self._agent(request, agent_id), request))

    @extend_schema(request=CapabilitiesInputSerializer, responses=CapabilitiesSerializer)
    def put(self, request: Request, agent_id: str) -> Response:
        agent = self._agent(request, agent_id)
        data = valid_input(CapabilitiesInputSerializer, request)
        services.capabilities_set(actor=request_actor(request), agent=agent, capabilities=data["capabilities"])
        return Response(self._body(agent, request))


ADMIN = ("agents:write", "tools.change_tool")


class ModuleEndpointViewSet(viewsets.GenericViewSet):
    """Where the organization's CRM, calendar, SMS gateway and search API answer (admins)."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": ADMIN,
        "retrieve": ADMIN,
        "create": ADMIN,
        "partial_update": ADMIN,
        "destroy": ADMIN,
    }
    serializer_class = ModuleEndpointSerializer
    queryset = ModuleEndpoint.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.module_endpoint_list(actor=request_actor(self.request))

    def get_object(self):
        return selectors.module_endpoint_get(actor=request_actor(self.request), endpoint_id=self.kwargs["pk"])

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ModuleEndpointSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(ModuleEndpointSerializer(self.get_object()).data)

    @extend_schema(request=ModuleEndpointInputSerializer, responses={201: ModuleEndpointSerializer})
    def create(self, request: Request) -> Response:
        endpoint = services.module_endpoint_save(
            actor=request_actor(request), data=valid_input(ModuleEndpointInputSerializer, request)
        )
        return Response(ModuleEndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ModuleEndpointUpdateSerializer, responses=ModuleEndpointSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        endpoint = services.module_endpoint_save(
            actor=request_actor(request),
            data=valid_input(ModuleEndpointUpdateSerializer, request, partial=True),
            endpoint=self.get_object(),
        )
        return Response(ModuleEndpointSerializer(endpoint).data)

    def destroy(self, request: Request, pk: str) -> Response:
        services.module_endpoint_delete(actor=request_actor(request), endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotificationViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's own in-app notifications (approval requests, agents' notify_user)."""

    permission_classes = [AccessRules]
    access_rules = {"list": ("agents:read", None), "retrieve": ("agents:read", None), "read": ("agents:read", None)}
    serializer_class = NotificationSerializer
    queryset = Notification.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        qs = selectors.notification_list(actor=request_actor(self.request))
        if self.request.query_params.get("unread") in ("1", "true"):
            qs = qs.filter(read_at__isnull=True)
        return qs

    def get_object(self) -> Notification:
        try:
            pk = uuid.UUID(self.kwargs["pk"])
        except ValueError:
            raise NotFound("Notification not found.") from None
        notification = self.get_queryset().filter(pk=pk).first()
        if notification is None:
            raise NotFound("Notification not found.")
        return notification

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        notification = services.notification_mark_read(actor=request_actor(request), notification=self.get_object())
        return Response(NotificationSerializer(notification).data)


class EmailTemplateViewSet(viewsets.GenericViewSet):
    """The organization's email templates, which ``email_send`` renders with ``template_id``
    and ``variables`` (members read them, admins write them)."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": READ,
        "retrieve": READ,
        "create": ADMIN,
        "partial_update": ADMIN,
        "destroy": ADMIN,
    }
    serializer_class = EmailTemplateSerializer
    queryset = EmailTemplate.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.email_template_list(organization_id=request_actor(self.request).organization.pk)

    def get_object(self) -> EmailTemplate:
        return selectors.email_template_get(
            organization_id=request_actor(self.request).organization.pk, template_id=self.kwargs["pk"]
        )

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(EmailTemplateSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(EmailTemplateSerializer(self.get_object()).data)

    @extend_schema(request=EmailTemplateInputSerializer, responses={201: EmailTemplateSerializer})
    def create(self, request: Request) -> Response:
        template = services.email_template_save(
            actor=request_actor(request), data=valid_input(EmailTemplateInputSerializer, request)
        )
        return Response(EmailTemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EmailTemplateUpdateSerializer, responses=EmailTemplateSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        template = self.get_object()
        data = valid_input(EmailTemplateUpdateSerializer, request, partial=True)
        template = services.email_template_save(actor=request_actor(request), data=data, template=template)
        return Response(EmailTemplateSerializer(template).data)

    def destroy(self, request: Request, pk: str) -> Response:
        services.email_template_delete(actor=request_actor(request), template=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
