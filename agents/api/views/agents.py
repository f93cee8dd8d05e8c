"""``agents/``: CRUD of the draft, lifecycle, versions, metrics, grants."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import AccessRules, request_actor
from agents import selectors, services
from agents.access import agent_rights
from agents.api.filters import SORT_FIELDS, AgentFilter
from agents.api.serializers import (
    AgentDetailSerializer,
    AgentFromTemplateSerializer,
    AgentInputSerializer,
    AgentSerializer,
    AgentVersionDetailSerializer,
    AgentVersionSerializer,
    GoalProgressInputSerializer,
    GrantInputSerializer,
    GrantSerializer,
    PublishInputSerializer,
    RevokeInputSerializer,
    RollbackInputSerializer,
    agent_list_data,
    agent_list_rows,
)
from agents.api.views.base import READ, SEMVER_PATH, WRITE
from agents.goals import metric_list
from agents.models import Agent, AgentTemplate, GoalProgress
from agents.services.agents import agent_creation_failed
from agents.services.common import require
from agents.services.dry_run import agent_validate
from agents.services.goal_progress import goal_get, goal_progress_record
from agents.stats_selectors import MAX_TREND_DAYS, agent_org_stats, agent_recent_executions, agent_trends
from agents.template_data import TEMPLATES
from agents.vocabulary import vocabulary
from config.api.errors import ApiError, InvalidInput
from config.api.inputs import valid_input
from config.api.openapi import ETAG, IF_MATCH, error_responses
from config.api.pagination import LimitOffsetTotalPagination

# The platform's own templates (manage.py sync_platform installs them).
BUILTIN_TEMPLATE_KEYS = frozenset(template["key"] for template in TEMPLATES)
DAYS = OpenApiParameter("days", int, description=f"Days of daily trends, 1 to {MAX_TREND_DAYS} (default 30).")


def _progress_row(progress: GoalProgress) -> dict[str, Any]:
    return {
        "id": progress.pk,
        "value": str(progress.value),
        "recorded_at": progress.recorded_at.isoformat(),
        "recorded_by": progress.recorded_by.get_username() if progress.recorded_by else None,
    }


def _days(request: Request) -> int:
    raw = request.query_params.get("days", "30")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TREND_DAYS:
        raise InvalidInput(validation_errors={"days": [f"A whole number from 1 to {MAX_TREND_DAYS}."]})
    return int(raw)


class AgentViewSet(viewsets.GenericViewSet):
    """The organization's agents: CRUD of the draft, lifecycle, versions, metrics, grants."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": READ,
        "retrieve": READ,
        "versions": READ,
        "version_detail": READ,
        "compare": READ,
        "metrics": READ,
        "stats": READ,
        "goal_metrics": READ,
        "vocabulary": READ,
        "goal_progress": READ,
        "goal_progress_report": WRITE,
        "permissions": READ,
        "create": ("agents:write", "agents.add_agent"),
        "from_template": ("agents:write", "agents.add_agent"),
        "validate": ("agents:write", "agents.add_agent"),
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
        context = {
            "rights": agent_rights(actor, agent),
            "warnings": selectors.agent_warnings(agent),
            "recent_executions": agent_recent_executions(agent=agent),
        }
        data = AgentDetailSerializer(agent, context=context).data
        return Response(data, status=status_code, headers={"ETag": selectors.agent_etag(agent)})

    @extend_schema(
        parameters=[
            OpenApiParameter("sort_by", str, enum=list(SORT_FIELDS)),
            OpenApiParameter("sort_order", str, enum=["asc", "desc"]),
        ]
    )
    def list(self, request: Request) -> Response:
        """A page read as tuples and written by agent_list_data (what AgentSerializer writes)."""
        assert isinstance(self.paginator, LimitOffsetTotalPagination)
        queryset = self.filter_queryset(self.get_queryset())
        rows = self.paginator.paginate_queryset(queryset, request, view=self, rows=agent_list_rows)
        return self.get_paginated_response(agent_list_data(rows or []))

    @extend_schema(request=AgentInputSerializer, responses={201: AgentDetailSerializer})
    def create(self, request: Request) -> Response:
        agent = services.agent_create(actor=request_actor(request), data=valid_input(AgentInputSerializer, request))
        return self._detail(agent, status.HTTP_201_CREATED)

    @extend_schema(responses=AgentDetailSerializer, parameters=[ETAG])
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return self._detail(self.get_object())

    @extend_schema(
        request=AgentInputSerializer,
        responses={200: AgentDetailSerializer, **error_responses("PreconditionFailed")},
        parameters=[IF_MATCH, ETAG],
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        data = valid_input(AgentInputSerializer, request, partial=True)
        agent = services.agent_update(
            actor=request_actor(request),
            agent=self.get_object(),
            data=data,
            if_match=request.headers.get("If-Match"),
        )
        return self._detail(agent)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.agent_delete(actor=request_actor(request), agent=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=AgentFromTemplateSerializer, responses={201: AgentDetailSerializer})
    @action(detail=False, methods=["post"], url_path="from-template")
    def from_template(self, request: Request) -> Response:
        data = valid_input(AgentFromTemplateSerializer, request)
        key = data.pop("template")
        template = selectors.agent_template_list().filter(key=key).first()
        if template is None and key in BUILTIN_TEMPLATE_KEYS and not AgentTemplate.objects.filter(key=key).exists():
            # A built-in template the platform should have but was never installed: the
            # platform's fault, not the caller's (operators run `manage.py sync_platform`).
            raise agent_creation_failed(f"The built-in template {key!r} is not installed.", template=key)
        if template is None:
            raise InvalidInput(validation_errors={"template": ["No such template."]})
        agent = services.agent_create_from_template(actor=request_actor(request), template=template, data=data)
        return self._detail(agent, status.HTTP_201_CREATED)

    @extend_schema(request=AgentInputSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"])
    def validate(self, request: Request) -> Response:
        """The errors create would answer for this body; nothing is written."""
        data = valid_input(AgentInputSerializer, request)
        return Response(agent_validate(actor=request_actor(request), data=data))

    # --- lifecycle ---------------------------------------------------------------------

    @extend_schema(request=PublishInputSerializer, responses={201: AgentVersionDetailSerializer})
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        data = valid_input(PublishInputSerializer, request)
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
        agent = self.get_object()
        require(request_actor(request), agent, "write")  # a role that may not edit gets 403, not the 409
        found = selectors.agent_version_get(agent=agent, version=version)
        raise ApiError(
            code="VersionConflict",
            message=f"Version {found.version} is published and immutable; edit the draft and publish a new version.",
            details={"version": found.version},
        )

    @extend_schema(request=RollbackInputSerializer, responses=AgentVersionDetailSerializer)
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str | None = None) -> Response:
        data = valid_input(RollbackInputSerializer, request)
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

    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=[DAYS])
    @action(detail=True, methods=["get"])
    def metrics(self, request: Request, pk: str | None = None) -> Response:
        agent = self.get_object()
        trends = agent_trends(Agent.objects.filter(pk=agent.pk), days=_days(request))
        return Response({**selectors.agent_metrics(agent=agent), "trends": trends})

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def vocabulary(self, request: Request) -> Response:
        """The predefined values of the agent body: capability tags (with what each means) and
        the personality's tone, behavior and language_style."""
        return Response(vocabulary())

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"], url_path="goal-metrics")
    def goal_metrics(self, request: Request) -> Response:
        """The platform's goal metrics (measured from the runs); any other name is a custom
        metric whose values are reported to goals/{goal_id}/progress/."""
        metrics = metric_list()
        return Response({"results": metrics, "total": len(metrics)})

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"], url_path=r"goals/(?P<goal_id>[^/]+)/progress")
    def goal_progress(self, request: Request, pk: str | None = None, goal_id: str = "") -> Response:
        """The reported values of the goal's custom metric, newest first."""
        goal = goal_get(agent=self.get_object(), goal_id=goal_id)
        page = self.paginate_queryset(GoalProgress.objects.filter(goal=goal).select_related("recorded_by"))
        return self.get_paginated_response([_progress_row(p) for p in page or []])

    @extend_schema(request=GoalProgressInputSerializer, responses={201: OpenApiTypes.OBJECT})
    @goal_progress.mapping.post
    def goal_progress_report(self, request: Request, pk: str | None = None, goal_id: str = "") -> Response:
        agent = self.get_object()
        require(request_actor(request), agent, "write")  # a role that may not edit gets 403 before a 400
        goal = goal_get(agent=agent, goal_id=goal_id)
        data = valid_input(GoalProgressInputSerializer, request)
        progress = goal_progress_record(
            actor=request_actor(request),
            agent=agent,
            goal=goal,
            value=data["value"],
            recorded_at=data.get("recorded_at"),
        )
        goal.refresh_from_db()
        body = {
            "progress": _progress_row(progress),
            "goal": {
                "id": str(goal.pk),
                "name": goal.name,
                "metric": goal.success_metric,
                "current_value": str(goal.current_value) if goal.current_value is not None else None,
                "is_achieved": goal.is_achieved,
                "achieved_at": goal.achieved_at.isoformat() if goal.achieved_at else None,
            },
        }
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=[DAYS])
    @action(detail=False, methods=["get"])
    def stats(self, request: Request) -> Response:
        """Organization-wide: agents by status, runtime state and type; runs, success rate,
        cost; the top agents; success rate and response time per day."""
        return Response(agent_org_stats(actor=request_actor(request), days=_days(request)))

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
        data = valid_input(GrantInputSerializer, request)
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
