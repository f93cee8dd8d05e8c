from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
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


# Dates and the cost as DRF writes them (ISO 8601 in UTC, the cost's six places as a string).
_DATETIME = serializers.DateTimeField()
_COST = serializers.DecimalField(max_digits=14, decimal_places=6)


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
        e = instance
        when = _DATETIME.to_representation
        version = None if e.agent_version_id is None else e.agent_version  # a draft run has none
        return {
            "id": str(e.id),
            "agent_id": str(e.agent_id),
            "agent_version": None if version is None else str(version.version),
            "draft": version is None,
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
            "cost": _COST.to_representation(e.cost),
            "duration_ms": e.duration_ms,
            "started_at": None if e.started_at is None else when(e.started_at),
            "completed_at": None if e.completed_at is None else when(e.completed_at),
            "created_at": None if e.created_at is None else when(e.created_at),
            "parent": e.parent_id,
            "conversation_id": None if e.conversation_id is None else str(e.conversation_id),
            "warnings": e.warnings,
            "triggered_by": self.get_triggered_by(e),
            "resource_usage": self.get_resource_usage(e),
            "wait_until": None if e.wait_until is None else when(e.wait_until),
            "cancel_requested": e.cancel_requested,
        }

    def get_triggered_by(self, obj: Execution) -> dict:
        return {
            "type": obj.trigger_type,
            "user_id": obj.triggered_by_user_id,
            "token_id": obj.triggered_by_token_id,
            "parent_execution_id": obj.parent_id,
        }

    def get_resource_usage(self, obj: Execution) -> dict:
        return {
            "cpu_time_ms": obj.cpu_time_ms,
            "memory_peak_mb": obj.memory_peak_mb,
            "api_calls_count": obj.api_calls_count,
            "tokens_consumed": obj.tokens_total,
            "cost": str(obj.cost),
        }


# What a listed run is written from: read as tuples (``values_list``), no model instances.
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
    cost_text = _COST.to_representation
    data = []
    for (
        id_, agent_id, version_id, version, status, trigger_type, trigger_data, input_, output, result_text,
        actions_taken, error, error_code, error_details, retry_count, tokens_input, tokens_output, tokens_total,
        llm_calls, sandbox_calls, tool_calls, cost, duration_ms, started_at, completed_at, created_at, parent_id,
        conversation_id, warnings, user_id, token_id, cpu_time_ms, memory_peak_mb, api_calls_count, wait_until,
        cancel_requested,
    ) in rows:  # fmt: skip
        data.append(
            {
                "id": str(id_),
                "agent_id": str(agent_id),
                "agent_version": None if version_id is None else str(version),
                "draft": version_id is None,
                "status": status,
                "trigger_type": trigger_type,
                "trigger_data": json_value(trigger_data),
                "input": json_value(input_),
                "output": json_value(output),
                "result_text": result_text,
                "actions_taken": json_value(actions_taken),
                "error": error,
                "error_code": error_code,
                "error_details": json_value(error_details),
                "retry_count": retry_count,
                "tokens_input": tokens_input,
                "tokens_output": tokens_output,
                "tokens_total": tokens_total,
                "llm_calls": llm_calls,
                "sandbox_calls": sandbox_calls,
                "tool_calls": tool_calls,
                # numeric(14, 6) comes with its six places: DRF's quantize would change nothing.
                "cost": f"{cost:f}" if cost.as_tuple().exponent == -6 else cost_text(cost),
                "duration_ms": duration_ms,
                "started_at": iso_datetime(started_at, tz),
                "completed_at": iso_datetime(completed_at, tz),
                "created_at": iso_datetime(created_at, tz),
                "parent": parent_id,
                "conversation_id": None if conversation_id is None else str(conversation_id),
                "warnings": json_value(warnings),
                "triggered_by": {
                    "type": trigger_type,
                    "user_id": user_id,
                    "token_id": token_id,
                    "parent_execution_id": parent_id,
                },
                "resource_usage": {
                    "cpu_time_ms": cpu_time_ms,
                    "memory_peak_mb": memory_peak_mb,
                    "api_calls_count": api_calls_count,
                    "tokens_consumed": tokens_total,
                    "cost": str(cost),
                },
                "wait_until": iso_datetime(wait_until, tz),
                "cancel_requested": cancel_requested,
            }
        )
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
