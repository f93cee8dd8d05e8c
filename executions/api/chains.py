"""Running chains over HTTP: ``chains/{id}/execute/`` and ``chain-executions/``.

The definitions (``chains/``) are ``agents.api.views.chains``; the execute action is a viewset
of its own on the same ``chains`` prefix, so its path, name and schema stay what they were.
"""

from __future__ import annotations

import time

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import AccessRules, request_actor
from agents import selectors
from agents.models import AgentChain, ChainExecution, ChainRunStatus, ChainStepRun
from config.api.inputs import StrictSerializer, valid_input
from config.api.openapi import IDEMPOTENCY_KEY, error_responses
from executions.chains.services import chain_execution_cancel, chain_execution_start

UUID_PATH = "[0-9a-fA-F-]{36}"


class StepRunSerializer(serializers.ModelSerializer):
    execution_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = ChainStepRun
        fields = [
            "step_id", "position", "attempt", "fallback_for", "status", "execution_id", "output", "error",
            "error_code", "tokens", "cost", "deadline_at", "started_at", "completed_at",
        ]  # fmt: skip
        read_only_fields = fields


class ChainExecutionSerializer(serializers.ModelSerializer):
    chain_id = serializers.UUIDField(read_only=True)
    chain_name = serializers.CharField(source="chain.name", read_only=True)
    parent_execution_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = ChainExecution
        fields = [
            "id", "chain_id", "chain_name", "status", "input", "vars", "output", "error", "error_code",
            "error_details", "failed_step", "tokens_total", "cost", "parent_execution_id", "created_at",
            "started_at", "completed_at", "duration_ms",
        ]  # fmt: skip
        read_only_fields = fields


class ChainExecutionDetailSerializer(ChainExecutionSerializer):
    steps = StepRunSerializer(source="step_runs", many=True, read_only=True)

    class Meta(ChainExecutionSerializer.Meta):
        fields = [*ChainExecutionSerializer.Meta.fields, "steps"]
        read_only_fields = fields


class ExecuteChainSerializer(StrictSerializer):
    input = serializers.DictField(required=False, default=dict)  # type: ignore[assignment]
    wait = serializers.FloatField(required=False, min_value=0, max_value=60, help_text="seconds to wait for the end")


def _detail(run: ChainExecution) -> dict:
    run = ChainExecution.objects.select_related("chain").prefetch_related("step_runs").get(pk=run.pk)
    return ChainExecutionDetailSerializer(run).data


class ChainRunViewSet(viewsets.GenericViewSet):
    """Run a chain: a chain execution starts with ``input`` and is queued; with ``wait``
    (seconds, at most 60) the answer waits for its end: 200 when it ended, 202 while it runs.
    The same caller's repeated Idempotency-Key answers the first execution."""

    permission_classes = [AccessRules]
    access_rules = {"execute": ("agents:execute", "agents.execute_agent")}
    queryset = AgentChain.objects.none()
    lookup_value_regex = UUID_PATH

    @extend_schema(
        request=ExecuteChainSerializer,
        responses={
            202: ChainExecutionDetailSerializer,
            200: ChainExecutionDetailSerializer,
            **error_responses("IdempotencyKeyMismatch"),
        },
        parameters=[IDEMPOTENCY_KEY],
    )
    @action(detail=True, methods=["post"])
    def execute(self, request: Request, pk: str) -> Response:
        actor = request_actor(request)
        chain = selectors.chain_get(actor=actor, chain_id=pk)
        data = valid_input(ExecuteChainSerializer, request)
        run = chain_execution_start(
            chain=chain,
            input=data.get("input") or {},
            actor=actor,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        wait = data.get("wait")
        if wait:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and not run.is_terminal:
                time.sleep(0.1)
                run.refresh_from_db()
        code = status.HTTP_200_OK if run.is_terminal else status.HTTP_202_ACCEPTED
        return Response(_detail(run), status=code)


class ChainExecutionFilter(django_filters.FilterSet):
    chain = django_filters.UUIDFilter(field_name="chain_id")
    status = django_filters.MultipleChoiceFilter(choices=ChainRunStatus.choices)

    class Meta:
        model = ChainExecution
        fields = ["chain", "status"]


class ChainExecutionViewSet(viewsets.ReadOnlyModelViewSet):
    """Chain runs with every step attempt and the agent execution it started."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": ("agents:read", "executions.view_execution"),
        "retrieve": ("agents:read", "executions.view_execution"),
        "cancel": ("agents:execute", "executions.cancel_execution"),
    }
    serializer_class = ChainExecutionSerializer
    filterset_class = ChainExecutionFilter
    queryset = ChainExecution.objects.none()
    lookup_value_regex = UUID_PATH

    def get_queryset(self):
        return selectors.chain_execution_list(actor=request_actor(self.request))

    @extend_schema(responses=ChainExecutionDetailSerializer)
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        run = selectors.chain_execution_get(actor=request_actor(request), chain_execution_id=pk)
        return Response(_detail(run))

    @extend_schema(request=None, responses={202: ChainExecutionDetailSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        actor = request_actor(request)
        run = selectors.chain_execution_get(actor=actor, chain_execution_id=pk)
        run = chain_execution_cancel(chain_execution=run, actor=actor)
        return Response(_detail(run), status=status.HTTP_202_ACCEPTED)
