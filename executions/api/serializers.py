from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django.db.models import JSONField, QuerySet
from django.utils import timezone
from rest_framework import serializers

from agents.models import AgentVersion
from config.api.inputs import StrictSerializer
from config.api.rows import iso_datetime, json_value, page_rows, select_columns
from executions.models import Execution, ExecutionLog, ExecutionStep


class ExecuteSerializer(StrictSerializer):
    task = serializers.CharField(max_length=100_000, trim_whitespace=False)
    context = serializers.DictField(required=False, default=dict)  # type: ignore[assignment]
    max_tokens = serializers.IntegerField(required=False, min_value=1, max_value=200_000)
    conversation_id = serializers.UUIDField(required=False)
    draft = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Run the agent's unpublished draft (validated as publishing would) instead of its current "
        "version; needs the right to edit the agent. The execution has agent_version null and draft true.",
    )
    wait = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=60,
        help_text="Seconds to wait for the result; the answer comes sooner when the run ends (200) or "
        "parks for an approval or a timer (202 with status waiting_approval or waiting).",
    )


# The cost as DRF writes it (the cost's six places as a string).
_COST = serializers.DecimalField(max_digits=14, decimal_places=6)


def _cost_text(cost: Decimal) -> str:
    # numeric(14, 6) comes with its six places: DRF's quantize would change nothing.
    return f"{cost:f}" if cost.as_tuple().exponent == -6 else _COST.to_representation(cost)


def _triggered_by(e: Any) -> dict[str, Any]:
    return {
        "type": e.trigger_type,
        "user_id": e.triggered_by_user_id,
        "token_id": e.triggered_by_token_id,
        "parent_execution_id": e.parent_id,
    }


def _resource_usage(e: Any) -> dict[str, Any]:
    return {
        "cpu_time_ms": e.cpu_time_ms,
        "memory_peak_mb": e.memory_peak_mb,
        "api_calls_count": e.api_calls_count,
        "tokens_consumed": e.tokens_total,
        "cost": str(e.cost),
    }


def _execution_data(e: Any, *, version: Any, tz: tzinfo) -> dict[str, Any]:
    """A run as ExecutionSerializer writes it, from any object with the row's attributes (a
    model instance, or a listed row with its JSON decoded) and its version's label (None: a
    draft run)."""
    return {
        "id": str(e.id),
        "agent_id": str(e.agent_id),
        "agent_version": None if e.agent_version_id is None else str(version),
        "draft": e.agent_version_id is None,
        "status": e.status,
        "trigger_type": e.trigger_type,
        "trigger_data": e.trigger_data,
        "input": e.input,
        "output": e.output,
        "result_text": e.result_text,
        "actions_taken": e.actions_taken,
        "error": e.error,
        "error_code": e.error_code,
        "error_details": e.error_details,
        "retry_count": e.retry_count,
        "tokens_input": e.tokens_input,
        "tokens_output": e.tokens_output,
        "tokens_total": e.tokens_total,
        "llm_calls": e.llm_calls,
        "sandbox_calls": e.sandbox_calls,
        "tool_calls": e.tool_calls,
        "cost": _cost_text(e.cost),
        "duration_ms": e.duration_ms,
        "started_at": iso_datetime(e.started_at, tz),
        "completed_at": iso_datetime(e.completed_at, tz),
        "created_at": iso_datetime(e.created_at, tz),
        "parent": e.parent_id,
        "conversation_id": None if e.conversation_id is None else str(e.conversation_id),
        "warnings": e.warnings,
        "triggered_by": _triggered_by(e),
        "resource_usage": _resource_usage(e),
        "wait_until": iso_datetime(e.wait_until, tz),
        "cancel_requested": e.cancel_requested,
    }


class ExecutionSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(read_only=True)
    agent_version = serializers.CharField(
        source="agent_version.version",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The version run; null on a draft run.",
    )
    draft = serializers.BooleanField(
        source="is_draft", read_only=True, help_text="A run of the agent's unpublished draft (no version)."
    )
    triggered_by = serializers.SerializerMethodField()
    resource_usage = serializers.SerializerMethodField()

    class Meta:
        model = Execution
        fields = [
            "id", "agent_id", "agent_version", "draft", "status", "trigger_type", "trigger_data", "input", "output",
            "result_text", "actions_taken", "error", "error_code", "error_details", "retry_count", "tokens_input",
            "tokens_output", "tokens_total", "llm_calls", "sandbox_calls", "tool_calls", "cost", "duration_ms", "started_at",
            "completed_at", "created_at", "parent", "conversation_id", "warnings", "triggered_by", "resource_usage",
            "wait_until", "cancel_requested",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance: Execution) -> dict:
        """The fields above, read straight off the row: the generic path (a bound field per
        column, a ``get_attribute`` and a ``to_representation`` each) was most of the CPU of
        a list page and of the execute request. Same output; tests pin it against the
        generic path (tests/executions/test_execute_request.py)."""
        agent_version = None if instance.agent_version_id is None else instance.agent_version  # a draft has none
        version = None if agent_version is None else agent_version.version
        return _execution_data(instance, version=version, tz=timezone.get_current_timezone())

    def get_triggered_by(self, obj: Execution) -> dict:
        return _triggered_by(obj)

    def get_resource_usage(self, obj: Execution) -> dict:
        return _resource_usage(obj)


# What a listed run is written from (execution_list_data), in this order; the version's
# label comes after agent_version_id.
_HEAD = ("id", "agent_id", "agent_version_id")
_TAIL = (
    "status", "trigger_type", "trigger_data", "input", "output", "result_text", "actions_taken", "error",
    "error_code", "error_details", "retry_count", "tokens_input", "tokens_output", "tokens_total", "llm_calls",
    "sandbox_calls", "tool_calls", "cost", "duration_ms", "started_at", "completed_at", "created_at", "parent_id",
    "conversation_id", "warnings", "triggered_by_user_id", "triggered_by_token_id", "cpu_time_ms",
    "memory_peak_mb", "api_calls_count", "wait_until", "cancel_requested",
)  # fmt: skip
_ROW_NAMES = (*_HEAD, "version", *_TAIL)
# Come as text (jsonb), decoded by config.api.rows.json_value.
_FIELDS = {f.attname: f for f in Execution._meta.concrete_fields}
_JSON_AT = tuple(i for i, name in enumerate(_ROW_NAMES) if name != "version" and isinstance(_FIELDS[name], JSONField))
# Names from the models' metadata only; the page's ids are the ORM's statement and parameters.
_SELECT = (
    f'SELECT {select_columns("e", Execution, _HEAD)}, v."version", {select_columns("e", Execution, _TAIL)}'  # noqa: S608
    f' FROM {{ids}} JOIN "{Execution._meta.db_table}" e ON e."id" = page.id'
    f' LEFT JOIN "{AgentVersion._meta.db_table}" v ON v."id" = e."agent_version_id" ORDER BY page.n'
)


def execution_list_rows(queryset: QuerySet[Execution], offset: int, limit: int) -> list[tuple]:
    """The page of ``queryset`` as execution_list_data reads it (config.api.rows.page_rows)."""
    return page_rows(queryset, _SELECT, offset, limit)


def execution_list_data(rows: Iterable[tuple]) -> list[dict[str, Any]]:
    """Rows of ``execution_list_rows`` as ExecutionSerializer writes them: a page of runs without
    building 50 model instances (and their versions) and a serializer - most of a list
    request's CPU. tests/executions/test_list_rows.py pins the output against the
    serializer's for every kind of row."""
    tz = timezone.get_current_timezone()
    data = []
    for row in rows:
        values = list(row)
        for i in _JSON_AT:
            values[i] = json_value(values[i])
        e = SimpleNamespace(**dict(zip(_ROW_NAMES, values, strict=True)))
        data.append(_execution_data(e, version=e.version, tz=tz))
    return data


class ExecutionStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExecutionStep
        fields = [
            "step_number", "step_type", "status", "input_text", "reasoning", "output_text", "tool_name",
            "tool_call_id", "tool_input", "tool_output", "is_error", "provider", "model", "tokens_input",
            "tokens_output", "tokens_used", "cost", "started_at", "completed_at", "duration_ms",
        ]  # fmt: skip
        read_only_fields = fields


class ExecutionLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExecutionLog
        fields = ["level", "message", "metadata", "timestamp"]
        read_only_fields = fields
