from __future__ import annotations

import time
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccessRules, request_actor
from agents.selectors import agent_get, agent_get_for_execution, agent_rights_for
from config.api.errors import ApiError
from config.api.filters import FromToFilterSet, UtcIsoDateTimeFilter
from config.api.negotiation import ErrorsAsJson
from config.api.openapi import IDEMPOTENCY_KEY, error_responses
from config.api.pagination import LimitOffsetTotalPagination
from config.db import connection_release
from executions import selectors, services
from executions.api.serializers import (
    ExecuteSerializer,
    ExecutionLogSerializer,
    ExecutionSerializer,
    ExecutionStepSerializer,
    execution_list_data,
    execution_list_rows,
)
from executions.api.sse import EventStreamRenderer, event_stream
from executions.models import Execution, ExecutionStatus, TriggerType

READ = ("agents:read", "executions.view_execution")


class ExecutionFilter(FromToFilterSet):
    agent = django_filters.UUIDFilter(field_name="agent_id")
    status = django_filters.MultipleChoiceFilter(choices=ExecutionStatus.choices)
    trigger_type = django_filters.ChoiceFilter(choices=TriggerType.choices)
    # "from" is a Python keyword, hence the declared field names.
    created_from = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte", label="from")
    created_to = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt", label="to")
    sort_by = django_filters.OrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("duration_ms", "duration_ms"),
            ("cost", "cost"),
            ("tokens_total", "tokens_total"),
        )
    )

    class Meta:
        model = Execution
        fields = ["agent", "status", "trigger_type"]

    @classmethod
    def unfiltered(cls, queryset: QuerySet[Execution]) -> QuerySet[Execution]:
        """Without parameters this set filters nothing (config.api.filters.FilterBackend)."""
        return queryset


class ExecutionViewSet(ErrorsAsJson, viewsets.ReadOnlyModelViewSet):
    serializer_class = ExecutionSerializer
    permission_classes = [AccessRules]
    access_rules = {
        "list": READ,
        "retrieve": READ,
        "steps": READ,
        "logs": READ,
        "stream": READ,
        "cancel": ("agents:execute", "executions.cancel_execution"),
    }
    filterset_class = ExecutionFilter
    queryset = Execution.objects.none()

    def get_queryset(self):
        return selectors.execution_list(actor=request_actor(self.request))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A page read as tuples and written by execution_list_data (what the serializer writes)."""
        assert isinstance(self.paginator, LimitOffsetTotalPagination)
        rows = self.paginator.paginate_queryset(
            self.filter_queryset(self.get_queryset()), request, view=self, rows=execution_list_rows
        )
        return self.get_paginated_response(execution_list_data(rows or []))

    def get_object(self) -> Execution:
        return selectors.execution_get(actor=request_actor(self.request), execution_id=self.kwargs["pk"])

    @extend_schema(responses=ExecutionStepSerializer(many=True))
    @action(detail=True, methods=["get"])
    def steps(self, request: Request, pk: str | None = None) -> Response:
        execution = self.get_object()
        page = self.paginate_queryset(execution.steps.order_by("step_number"))
        return self.get_paginated_response(ExecutionStepSerializer(page, many=True).data)

    @extend_schema(responses=ExecutionLogSerializer(many=True))
    @action(detail=True, methods=["get"])
    def logs(self, request: Request, pk: str | None = None) -> Response:
        execution = self.get_object()
        page = self.paginate_queryset(execution.logs.order_by("id"))
        return self.get_paginated_response(ExecutionLogSerializer(page, many=True).data)

    @extend_schema(request=None, responses=ExecutionSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        execution = services.execution_cancel(execution=self.get_object(), actor=request_actor(request))
        return Response(ExecutionSerializer(execution).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={(200, "text/event-stream"): OpenApiTypes.STR},
        parameters=[OpenApiParameter("Last-Event-ID", OpenApiTypes.INT, OpenApiParameter.HEADER, required=False)],
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, EventStreamRenderer])
    def stream(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        execution = self.get_object()
        raw = request.headers.get("Last-Event-ID") or request.query_params.get("last_event_id") or "0"
        # ASCII digits only: str.isdigit() also says yes to "²" (int() refuses it) and to other
        # scripts' digits. Anything else is no id: the stream starts from the beginning.
        last_id = int(raw) if raw.isascii() and raw.isdigit() else 0
        response = StreamingHttpResponse(event_stream(execution.pk, last_id), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # tell proxies not to buffer the stream
        return response


# A parked run waits for a person or a timer, not for this request: ``wait`` answers at once.
PARKED_STATUSES = frozenset({ExecutionStatus.WAITING, ExecutionStatus.WAITING_APPROVAL})


def _wait_for_end(execution: Execution, seconds: float) -> Execution:
    """The run once it ended or parked (approval, timer), or as it is after ``seconds``."""
    deadline = time.monotonic() + seconds
    # Quick runs are answered within 50 ms; a long wait looks twice a second. Every look
    # takes a pooled connection and the GIL of the one web process: sixty requests
    # polling every 50 ms were more work than the rest of a burst together.
    interval = 0.05
    while True:
        execution.refresh_from_db()
        left = deadline - time.monotonic()
        if execution.is_terminal or execution.status in PARKED_STATUSES or left <= 0:
            return execution
        connection_release()  # not held while sleeping: the web process's pool is small
        time.sleep(min(interval, left))
        interval = min(interval * 1.5, 0.5)


class ExecuteAgentView(APIView):
    """Start a run of the agent; 202 with the execution, or 200 once it ended within ``wait``
    (202 as soon as it parks for an approval or a timer, with that status)."""

    permission_classes = [AccessRules]
    access_rules = {"post": ("agents:execute", "agents.execute_agent")}

    @extend_schema(
        request=ExecuteSerializer,
        responses={202: ExecutionSerializer, 200: ExecutionSerializer, **error_responses("IdempotencyKeyMismatch")},
        parameters=[IDEMPOTENCY_KEY],
    )
    def post(self, request: Request, agent_id: str) -> Response:
        actor = request_actor(request)
        agent = agent_get_for_execution(actor=actor, agent_id=agent_id)
        payload = ExecuteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if data["draft"] and "write" not in agent_rights_for(actor=actor, agent=agent):
            # The draft is work in progress: only who may edit the agent runs it.
            raise ApiError(
                code="InsufficientPermissions", message="Only members who may edit this agent may run its draft."
            )
        execution, created = services.execution_start(
            agent=agent,
            organization=actor.organization,
            task=data["task"],
            context=data.get("context"),
            actor=actor,
            idempotency_key=request.headers.get("Idempotency-Key"),
            conversation_id=data.get("conversation_id"),
            max_tokens=data.get("max_tokens"),
            draft=data["draft"],
        )
        if data.get("wait"):
            execution = _wait_for_end(execution, data["wait"])
        code = status.HTTP_200_OK if execution.is_terminal else status.HTTP_202_ACCEPTED
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return Response(ExecutionSerializer(execution).data, status=code, headers=headers)


class AgentExecutionsView(APIView):
    permission_classes = [AccessRules]
    access_rules = {"get": READ}

    @extend_schema(responses=ExecutionSerializer(many=True), parameters=[OpenApiParameter("status", str)])
    def get(self, request: Request, agent_id: str) -> Response:
        actor = request_actor(request)
        agent = agent_get(actor=actor, agent_id=agent_id)
        view = ExecutionViewSet(request=request, format_kwarg=None, action="list")
        queryset = view.filter_queryset(selectors.execution_list(actor=actor).filter(agent=agent))
        paginator = view.paginator
        assert isinstance(paginator, LimitOffsetTotalPagination)
        rows = paginator.paginate_queryset(queryset, request, view=self, rows=execution_list_rows)
        return paginator.get_paginated_response(execution_list_data(rows or []))
