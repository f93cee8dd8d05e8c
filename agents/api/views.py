"""Agents REST endpoints (API.md "Agents"). Thin: read with selectors, write with services.

Object-level rules (visibility, own agents, grants) are decided by the selectors and the
services, so ``access_rules`` here name a token scope and only the role permissions that
no grant can replace (creating agents, managing platform-agent configurations).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors, services
from agents.access import agent_rights
from agents.api.filters import AgentFilter
from agents.api.serializers import (
    AgentDetailSerializer,
    AgentFromTemplateSerializer,
    AgentInputSerializer,
    AgentSerializer,
    AgentTemplateSerializer,
    AgentVersionDetailSerializer,
    AgentVersionSerializer,
    ConfigurationInputSerializer,
    CopyInputSerializer,
    GrantInputSerializer,
    GrantSerializer,
    MarketplaceAgentDetailSerializer,
    MarketplaceAgentSerializer,
    PlatformAgentSerializer,
    PublishInputSerializer,
    RevokeInputSerializer,
    RollbackInputSerializer,
)
from agents.models import Agent, AgentConfiguration, AgentTemplate
from billing.access import AccessRules, request_actor
from config.api.errors import ApiError, InvalidInput

READ = ("agents:read", None)
WRITE = ("agents:write", None)
SEMVER_PATH = r"(?P<version>\d+\.\d+\.\d+)"


class MethodCheckedFirst:
    """An HTTP method the view does not offer answers 405 before any permission check
    (AccessRules would otherwise refuse it as an action without a rule: 403)."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        action_map = getattr(self, "action_map", None)
        method = (request.method or "").lower()
        if action_map is not None and method not in action_map and method != "options":
            raise MethodNotAllowed(method.upper())
        super().initial(request, *args, **kwargs)  # type: ignore[misc]


def _valid(serializer_class: type, request: Request, *, partial: bool = False) -> dict[str, Any]:
    data = request.data if isinstance(request.data, dict) else None
    if data is None:
        raise InvalidInput("The body must be a JSON object.")
    payload = serializer_class(data=data, partial=partial)
    payload.is_valid(raise_exception=True)
    return dict(payload.validated_data)


class AgentViewSet(MethodCheckedFirst, viewsets.GenericViewSet):
    """The organization's agents: CRUD of the draft, lifecycle, versions, metrics, grants."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": READ,
        "retrieve": READ,
        "versions": READ,
        "version_detail": READ,
        "compare": READ,
        "metrics": READ,
        "permissions": READ,
        "create": ("agents:write", "agents.add_agent"),
        "from_template": ("agents:write", "agents.add_agent"),
        "partial_update": WRITE,
        "destroy": WRITE,
        "publish": WRITE,
        "deprecate": WRITE,
        "archive": WRITE,
        "activate": WRITE,
        "deactivate": WRITE,
        "rollback": WRITE,
        "version_update": WRITE,
        "permission_grant": WRITE,
        "permission_revoke": WRITE,
    }
    serializer_class = AgentSerializer
    filterset_class = AgentFilter
    queryset = Agent.objects.none()
    # Any id reaches the view, so a malformed one answers AgentNotFound like a foreign one.
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.agent_list(actor=request_actor(self.request))

    def get_object(self) -> Agent:
        return selectors.agent_get(actor=request_actor(self.request), agent_id=self.kwargs["pk"])

    def _detail(self, agent: Agent, status_code: int = status.HTTP_200_OK) -> Response:
        actor = request_actor(self.request)
        agent = selectors.agent_get(actor=actor, agent_id=agent.pk)
        context = {"rights": agent_rights(actor, agent), "warnings": selectors.agent_warnings(agent)}
        return Response(AgentDetailSerializer(agent, context=context).data, status=status_code)

    @extend_schema(
        parameters=[
            OpenApiParameter("sort_by", str, enum=["name", "created_at", "updated_at", "agent_type", "status"]),
            OpenApiParameter("sort_order", str, enum=["asc", "desc"]),
        ]
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AgentSerializer(page, many=True).data)

    @extend_schema(request=AgentInputSerializer, responses={201: AgentDetailSerializer})
    def create(self, request: Request) -> Response:
        agent = services.agent_create(actor=request_actor(request), data=_valid(AgentInputSerializer, request))
        return self._detail(agent, status.HTTP_201_CREATED)

    @extend_schema(responses=AgentDetailSerializer)
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return self._detail(self.get_object())

    @extend_schema(request=AgentInputSerializer, responses=AgentDetailSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        data = _valid(AgentInputSerializer, request, partial=True)
        agent = services.agent_update(actor=request_actor(request), agent=self.get_object(), data=data)
        return self._detail(agent)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.agent_delete(actor=request_actor(request), agent=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=AgentFromTemplateSerializer, responses={201: AgentDetailSerializer})
    @action(detail=False, methods=["post"], url_path="from-template")
    def from_template(self, request: Request) -> Response:
        data = _valid(AgentFromTemplateSerializer, request)
        template = selectors.agent_template_list().filter(key=data.pop("template")).first()
        if template is None:
            raise InvalidInput(validation_errors={"template": ["No such template."]})
        agent = services.agent_create_from_template(actor=request_actor(request), template=template, data=data)
        return self._detail(agent, status.HTTP_201_CREATED)

    # --- lifecycle ---------------------------------------------------------------------

    @extend_schema(request=PublishInputSerializer, responses={201: AgentVersionDetailSerializer})
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        data = _valid(PublishInputSerializer, request)
        version = services.agent_publish(
            actor=request_actor(request),
            agent=self.get_object(),
            version=data.get("version") or None,
            changelog=data.get("changelog", ""),
            bump=data.get("bump", "minor"),
        )
        return Response(AgentVersionDetailSerializer(version).data, status=status.HTTP_201_CREATED)

    def _lifecycle(self, request: Request, service: Any) -> Response:
        agent = service(actor=request_actor(request), agent=self.get_object())
        return self._detail(agent)

    @extend_schema(request=None, responses=AgentDetailSerializer)
    @action(detail=True, methods=["post"])
    def deprecate(self, request: Request, pk: str | None = None) -> Response:
        return self._lifecycle(request, services.agent_deprecate)

    @extend_schema(request=None, responses=AgentDetailSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str | None = None) -> Response:
        return self._lifecycle(request, services.agent_archive)

    @extend_schema(request=None, responses=AgentDetailSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        return self._lifecycle(request, services.agent_activate)

    @extend_schema(request=None, responses=AgentDetailSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str | None = None) -> Response:
        return self._lifecycle(request, services.agent_deactivate)

    # --- versions ----------------------------------------------------------------------

    @extend_schema(responses=AgentVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        page = self.paginate_queryset(selectors.agent_version_list(agent=self.get_object()))
        return self.get_paginated_response(AgentVersionSerializer(page, many=True).data)

    @extend_schema(responses=AgentVersionDetailSerializer)
    @action(detail=True, methods=["get"], url_path=f"versions/{SEMVER_PATH}")
    def version_detail(self, request: Request, pk: str | None = None, version: str = "") -> Response:
        found = selectors.agent_version_get(agent=self.get_object(), version=version)
        return Response(AgentVersionDetailSerializer(found).data)

    @extend_schema(request=None, responses={409: None})
    @version_detail.mapping.put
    @version_detail.mapping.patch
    @version_detail.mapping.delete
    def version_update(self, request: Request, pk: str | None = None, version: str = "") -> Response:
        found = selectors.agent_version_get(agent=self.get_object(), version=version)
        raise ApiError(
            code="VersionConflict",
            message=f"Version {found.version} is published and immutable; edit the draft and publish a new version.",
            details={"version": found.version},
        )

    @extend_schema(request=RollbackInputSerializer, responses=AgentVersionDetailSerializer)
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str | None = None) -> Response:
        data = _valid(RollbackInputSerializer, request)
        version = services.agent_rollback(
            actor=request_actor(request), agent=self.get_object(), version=data["version"]
        )
        return Response(AgentVersionDetailSerializer(version).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, required=True, description="A version, `current` or `draft`."),
            OpenApiParameter("to", str, required=True, description="A version, `current` or `draft`."),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"], url_path="versions/compare")
    def compare(self, request: Request, pk: str | None = None) -> Response:
        agent = self.get_object()
        refs = {key: request.query_params.get(key, "").strip() for key in ("from", "to")}
        missing = {key: ["Required: a version, current or draft."] for key, value in refs.items() if not value}
        if missing:
            raise InvalidInput(validation_errors=missing)
        return Response(selectors.agent_version_diff(agent=agent, from_ref=refs["from"], to_ref=refs["to"]))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def metrics(self, request: Request, pk: str | None = None) -> Response:
        return Response(selectors.agent_metrics(agent=self.get_object()))

    # --- grants ------------------------------------------------------------------------

    def _grants_agent(self, request: Request) -> Agent:
        agent = self.get_object()
        if "admin" not in agent_rights(request_actor(request), agent):
            raise ApiError(code="InsufficientPermissions", message="You may not manage who can use this agent.")
        return agent

    @extend_schema(responses=GrantSerializer(many=True))
    @action(detail=True, methods=["get"])
    def permissions(self, request: Request, pk: str | None = None) -> Response:
        grants = selectors.agent_grant_list(agent=self._grants_agent(request))
        return Response({"results": GrantSerializer(grants, many=True).data, "total": len(grants)})

    @extend_schema(request=GrantInputSerializer, responses={201: GrantSerializer(many=True)})
    @permissions.mapping.post
    def permission_grant(self, request: Request, pk: str | None = None) -> Response:
        data = _valid(GrantInputSerializer, request)
        agent = self.get_object()
        services.agent_grant(
            actor=request_actor(request), agent=agent, user=data["user"], permission=data["permission"]
        )
        grants = selectors.agent_grant_list(agent=agent)
        return Response({"results": GrantSerializer(grants, many=True).data, "total": len(grants)}, status=201)

    @extend_schema(
        request=RevokeInputSerializer,
        parameters=[OpenApiParameter("user", str), OpenApiParameter("permission", str)],
        responses={204: None},
    )
    @permissions.mapping.delete
    def permission_revoke(self, request: Request, pk: str | None = None) -> Response:
        # DELETE bodies are unusual; the same fields are accepted as query parameters.
        raw = request.data if isinstance(request.data, dict) and request.data else request.query_params.dict()
        payload = RevokeInputSerializer(data=raw)
        payload.is_valid(raise_exception=True)
        services.agent_revoke(
            actor=request_actor(request),
            agent=self.get_object(),
            user=payload.validated_data["user"],
            permission=payload.validated_data.get("permission"),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MarketplaceViewSet(MethodCheckedFirst, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
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
        data = _valid(CopyInputSerializer, request)
        actor = request_actor(request)
        agent = services.marketplace_agent_copy(actor=actor, source=self.get_object(), name=data.get("name"))
        agent = selectors.agent_get(actor=actor, agent_id=agent.pk)
        context = {"rights": agent_rights(actor, agent), "warnings": selectors.agent_warnings(agent)}
        return Response(AgentDetailSerializer(agent, context=context).data, status=status.HTTP_201_CREATED)


class PlatformAgentViewSet(
    MethodCheckedFirst, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
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
        data = _valid(ConfigurationInputSerializer, request)
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


class AgentTemplateViewSet(
    MethodCheckedFirst, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
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
        return Response(services.organization_roles(organization=request_actor(request).organization))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def put(self, request: Request) -> Response:
        mapping: Any = request.data.get("roles", request.data) if isinstance(request.data, dict) else request.data
        return Response(services.role_permissions_set(actor=request_actor(request), mapping=mapping))
