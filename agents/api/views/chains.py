"""``chains/`` (definitions, validated as a whole; ``execute``) and ``chain-executions/``."""

from __future__ import annotations

import time

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import AccessRules, request_actor
from agents import selectors
from agents.chain_suggestions import chain_suggestions
from agents.models import AgentChain, ChainExecution, ChainRunStatus, ChainStepRun
from agents.services.chains import (
    chain_create,
    chain_delete,
    chain_execution_cancel,
    chain_execution_start,
    chain_update,
)
from agents.services.dry_run import chain_validate
from config.api.inputs import StrictSerializer, json_object_body, valid_input
from config.api.openapi import IDEMPOTENCY_KEY, error_responses

UUID_PATH = "[0-9a-fA-F-]{36}"


class ChainSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentChain
        fields = [
            "id", "name", "description", "status", "steps", "error_handling", "retry_policy", "timeout_seconds",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


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


class ChainViewSet(viewsets.GenericViewSet):
    """Agent chains: ordered steps (agent, input/output mapping, condition, timeout), error
    handling (stop, continue, fallback) and a retry policy; refused as a whole when an agent
    cannot run, a mapping names an output not produced before its step, or fallbacks loop."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": ("agents:read", "agents.view_agent"),
        "retrieve": ("agents:read", "agents.view_agent"),
        "create": ("agents:write", "agents.change_agent"),
        "validate": ("agents:write", "agents.change_agent"),
        "partial_update": ("agents:write", "agents.change_agent"),
        "destroy": ("agents:write", "agents.change_agent"),
        "execute": ("agents:execute", "agents.execute_agent"),
        "suggestions": ("agents:read", "agents.view_agent"),
    }
    serializer_class = ChainSerializer
    queryset = AgentChain.objects.none()
    lookup_value_regex = UUID_PATH

    def get_queryset(self):
        return selectors.chain_list(actor=request_actor(self.request))

    def _chain(self, pk: str) -> AgentChain:
        return selectors.chain_get(actor=request_actor(self.request), chain_id=pk)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ChainSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(ChainSerializer(self._chain(pk)).data)

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: ChainSerializer})
    def create(self, request: Request) -> Response:
        chain = chain_create(actor=request_actor(request), data=json_object_body(request))
        return Response(ChainSerializer(chain).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def suggestions(self, request: Request, pk: str) -> Response:
        """From the chain's history and definition: slow steps, failing steps, unused outputs."""
        return Response(chain_suggestions(chain=self._chain(pk)))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"])
    def validate(self, request: Request) -> Response:
        """The errors create would answer for this definition; nothing is written."""
        return Response(chain_validate(actor=request_actor(request), data=json_object_body(request)))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=ChainSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        chain = chain_update(actor=request_actor(request), chain=self._chain(pk), data=json_object_body(request))
        return Response(ChainSerializer(chain).data)

    def destroy(self, request: Request, pk: str) -> Response:
        chain_delete(actor=request_actor(request), chain=self._chain(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

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
        chain = self._chain(pk)
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
