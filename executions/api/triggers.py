"""``schedules/``, ``events/``, ``hooks/{agent_id}/``, ``agents/{id}/hook-secret/``,
``trigger-attempts/``. Thin: selectors read, services in executions.triggers write."""

from __future__ import annotations

from typing import Any

import django_filters
from cron_descriptor import get_description
from django.conf import settings
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccessRules, request_actor
from agents.access import agent_rights, visible_agents_q
from agents.models import Agent
from agents.selectors import agent_get, agent_get_for_execution
from config.api.errors import ApiError, InsufficientPermissions, InvalidInput
from config.api.inputs import json_object_body
from config.api.openapi import IDEMPOTENCY_KEY
from executions.api.serializers import ExecutionSerializer
from executions.models import AgentHookSecret, ScheduledExecution, TriggerAttempt, TriggerType
from executions.triggers import selectors
from executions.triggers.common import refusal_dict
from executions.triggers.events_in import event_dispatch
from executions.triggers.hooks_in import hook_receive, hook_secret_rotate
from executions.triggers.schedules import schedule_blockers, schedule_create, schedule_delete, schedule_update
from executions.triggers.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

READ = ("agents:read", "agents.view_agent")
RUN = ("agents:execute", "agents.execute_agent")
UUID_PATH = "[0-9a-fA-F-]{36}"


class ScheduleSerializer(serializers.ModelSerializer):
    agent = serializers.UUIDField(source="agent_id", read_only=True)
    agent_id = serializers.UUIDField(read_only=True)
    agent_name = serializers.CharField(source="agent.name", read_only=True)
    enabled = serializers.SerializerMethodField(help_text="Whether beat fires it now (active schedule and agent).")
    disabled_reasons = serializers.SerializerMethodField(
        help_text="Why it does not fire (paused, agent inactive, unpublished, archived...), each with the fix; "
        "empty when enabled."
    )
    description = serializers.SerializerMethodField()

    class Meta:
        model = ScheduledExecution
        fields = [
            "id", "agent", "agent_id", "agent_name", "source", "cron_expression", "timezone", "description", "input",
            "is_active", "enabled", "disabled_reasons", "next_execution_at", "last_execution_at", "last_execution_id", "fire_count",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_enabled(self, obj: ScheduledExecution) -> bool:
        return bool(obj.periodic_task and obj.periodic_task.enabled)

    def get_disabled_reasons(self, obj: ScheduledExecution) -> list[str]:
        reasons = schedule_blockers(obj)
        if not reasons and not self.get_enabled(obj):
            # Beat's entry lags the schedule (a change within the last seconds, or a missed sync):
            # the 15-minute reconcile puts it right.
            reasons.append("Beat's entry is not switched on yet; it is brought in line within 15 minutes.")
        return reasons

    def get_description(self, obj: ScheduledExecution) -> str:
        try:
            # cron-descriptor comes with django-celery-beat; a description is a courtesy.
            return f"{get_description(obj.cron_expression)} ({obj.timezone})"
        except Exception:
            return f"{obj.cron_expression} ({obj.timezone})"


class ScheduleFilter(django_filters.FilterSet):
    agent = django_filters.UUIDFilter(field_name="agent_id")

    class Meta:
        model = ScheduledExecution
        fields = ["agent", "source", "is_active"]


class ScheduleViewSet(viewsets.GenericViewSet):
    """Cron schedules with their own input; ``source: agent`` rows mirror agents'
    trigger_schedule and change with the agent. PATCH ``is_active`` pauses and resumes."""

    permission_classes = [AccessRules]
    access_rules = {"list": READ, "retrieve": READ, "create": RUN, "partial_update": RUN, "destroy": RUN}
    serializer_class = ScheduleSerializer
    filterset_class = ScheduleFilter
    queryset = ScheduledExecution.objects.none()
    lookup_value_regex = UUID_PATH

    def get_queryset(self):
        return selectors.schedule_list(actor=request_actor(self.request))

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ScheduleSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(ScheduleSerializer(selectors.schedule_get(actor=request_actor(request), schedule_id=pk)).data)

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: ScheduleSerializer})
    def create(self, request: Request) -> Response:
        actor = request_actor(request)
        data = json_object_body(request)
        agent_ref = data.pop("agent_id", data.pop("agent", None))
        if agent_ref is None:
            raise InvalidInput(validation_errors={"agent_id": ["Which agent to run."]})
        agent = agent_get_for_execution(actor=actor, agent_id=agent_ref)
        schedule = schedule_create(actor=actor, agent=agent, data=data)
        schedule = selectors.schedule_get(actor=actor, schedule_id=schedule.pk)
        return Response(ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=ScheduleSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        actor = request_actor(request)
        schedule = selectors.schedule_get(actor=actor, schedule_id=pk)
        agent_get_for_execution(actor=actor, agent_id=schedule.agent_id)  # may run it, or 403
        schedule_update(actor=actor, schedule=schedule, data=json_object_body(request))
        return Response(ScheduleSerializer(selectors.schedule_get(actor=actor, schedule_id=pk)).data)

    def destroy(self, request: Request, pk: str) -> Response:
        actor = request_actor(request)
        schedule = selectors.schedule_get(actor=actor, schedule_id=pk)
        agent_get_for_execution(actor=actor, agent_id=schedule.agent_id)
        schedule_delete(actor=actor, schedule=schedule)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EventSerializer(serializers.Serializer):
    type = serializers.CharField(max_length=200)
    payload = serializers.JSONField(required=False)


class EventView(APIView):
    """Start every active agent of the organization whose trigger_events match the type and
    whose trigger_conditions hold on the payload. ``Idempotency-Key`` makes a repeat harmless."""

    permission_classes = [AccessRules]
    access_rules = {"post": RUN}

    @extend_schema(
        request=EventSerializer,
        responses={202: OpenApiTypes.OBJECT},
        parameters=[IDEMPOTENCY_KEY],
    )
    def post(self, request: Request) -> Response:
        actor = request_actor(request)
        data = json_object_body(request)
        unknown = sorted(set(data) - {"type", "payload"})
        if unknown:
            raise InvalidInput(validation_errors={key: ["Unknown field."] for key in unknown})
        result = event_dispatch(
            actor=actor,
            event_type=data.get("type"),
            payload=data.get("payload", {}),
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        # A private agent stays private: the caller sees only the agents they may see.
        touched: set[Any] = {e.agent_id for e in [*result.executions, *result.replayed]}
        touched |= {a.agent_id for a in result.refused} | {a.pk for a in result.conditions_not_met}
        shown = set(
            Agent.objects.filter(visible_agents_q(actor) | Q(organization__isnull=True), pk__in=touched).values_list(
                "pk", flat=True
            )
        )
        body = {
            "event_id": result.event_id,
            "type": result.event_type,
            "started": len(result.executions),
            "executions": ExecutionSerializer([e for e in result.executions if e.agent_id in shown], many=True).data,
            "replayed": ExecutionSerializer([e for e in result.replayed if e.agent_id in shown], many=True).data,
            "refused": [refusal_dict(a) for a in result.refused if a.agent_id in shown],
            "conditions_not_met": [str(a.pk) for a in result.conditions_not_met if a.pk in shown],
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class HookView(APIView):
    """Inbound webhook of one agent: no token, the body's HMAC signature is the credential."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # max_runs_per_hour/day of the agent limit what a hook can start

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={202: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(SIGNATURE_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(TIMESTAMP_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True),
        ],
        auth=[],
    )
    def post(self, request: Request, agent_id: str) -> Response:
        length = request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > settings.API_MAX_BODY_BYTES:
            raise ApiError(code="PayloadTooLarge")
        body = request.body
        if len(body) > settings.API_MAX_BODY_BYTES:
            raise ApiError(code="PayloadTooLarge")
        result = hook_receive(
            agent_id=agent_id,
            body=body,
            signature=request.headers.get(SIGNATURE_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
        )
        if result.execution is None:
            return Response({"started": False, "reason": "The agent's trigger_conditions do not hold on this body."})
        code = status.HTTP_202_ACCEPTED if result.created else status.HTTP_200_OK
        return Response(
            {"started": result.created, "execution": ExecutionSerializer(result.execution).data}, status=code
        )


class HookSecretView(APIView):
    """``GET``: the agent's hook URL and whether it has a secret; ``POST``: make a new secret,
    shown in this response only (the previous one stops working)."""

    permission_classes = [AccessRules]
    access_rules = {"get": ("agents:read", None), "post": ("agents:write", None)}

    def _describe(self, request: Request, agent: Agent, hook: AgentHookSecret | None) -> dict[str, Any]:
        return {
            "agent_id": str(agent.pk),
            "url": request.build_absolute_uri(f"/api/v1/hooks/{agent.pk}/"),
            "has_secret": hook is not None,
            "secret_last4": hook.secret_last4 if hook else None,
            "created_at": hook.created_at if hook else None,
            "signature_header": SIGNATURE_HEADER,
            "timestamp_header": TIMESTAMP_HEADER,
        }

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, agent_id: str) -> Response:
        agent = agent_get(actor=request_actor(request), agent_id=agent_id)
        return Response(self._describe(request, agent, AgentHookSecret.objects.filter(agent=agent).first()))

    @extend_schema(request=None, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, agent_id: str) -> Response:
        actor = request_actor(request)
        agent = agent_get(actor=actor, agent_id=agent_id)
        if "write" not in agent_rights(actor, agent):
            raise InsufficientPermissions("You may not change this agent.", details={"required": "write"})
        hook, raw = hook_secret_rotate(actor=actor, agent=agent)
        return Response({**self._describe(request, agent, hook), "secret": raw}, status=status.HTTP_201_CREATED)


class TriggerAttemptSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = TriggerAttempt
        fields = ["id", "agent_id", "trigger_type", "code", "message", "details", "trigger_data", "created_at"]
        read_only_fields = fields


class TriggerAttemptFilter(django_filters.FilterSet):
    agent = django_filters.UUIDFilter(field_name="agent_id")
    trigger_type = django_filters.ChoiceFilter(choices=TriggerType.choices)

    class Meta:
        model = TriggerAttempt
        fields = ["agent", "trigger_type", "code"]


class TriggerAttemptViewSet(viewsets.ReadOnlyModelViewSet):
    """Triggers that were refused instead of running (rate limits, quotas, input)."""

    permission_classes = [AccessRules]
    access_rules = {"list": READ, "retrieve": READ}
    serializer_class = TriggerAttemptSerializer
    filterset_class = TriggerAttemptFilter
    queryset = TriggerAttempt.objects.none()
    lookup_value_regex = UUID_PATH

    def get_queryset(self):
        return selectors.trigger_attempt_list(actor=request_actor(self.request))
