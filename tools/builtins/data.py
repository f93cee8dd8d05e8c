"""data_query, data_aggregate, data_export: read-only, organization-scoped, whitelisted.

The model names an entity type and fields from the lists below; nothing else is reachable.
Every query is filtered by the run's organization before the model's filters apply, runs in
a read-only transaction (when the call is not already inside one) with a statement timeout.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldError, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Avg, Count, F, Max, Min, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncMonth
from django.utils.dateparse import parse_datetime

from tools.builtins.base import Invocation, ToolError


@dataclass(frozen=True)
class Entity:
    model: str
    fields: tuple[str, ...]
    numeric: tuple[str, ...] = ()
    dates: tuple[str, ...] = ("created_at",)
    base: tuple[tuple[str, Any], ...] = ()
    capability: str | None = None


ENTITIES: dict[str, Entity] = {
    "tasks": Entity(
        "tools.Task",
        ("id", "title", "description", "priority", "status", "due_date", "assigned_to_id", "agent_id", "created_at"),
        dates=("created_at", "due_date"),
    ),
    "email_drafts": Entity("tools.EmailDraft", ("id", "to", "subject", "body", "agent_id", "created_at")),
    "executions": Entity(
        "executions.Execution",
        (
            "id",
            "agent_id",
            "status",
            "trigger_type",
            "tokens_input",
            "tokens_output",
            "tokens_total",
            "llm_calls",
            "sandbox_calls",
            "tool_calls",
            "cost",
            "duration_ms",
            "error_code",
            "created_at",
            "started_at",
            "completed_at",
        ),
        numeric=(
            "tokens_input",
            "tokens_output",
            "tokens_total",
            "llm_calls",
            "sandbox_calls",
            "tool_calls",
            "cost",
            "duration_ms",
        ),
        dates=("created_at", "started_at", "completed_at"),
    ),
    "agents": Entity(
        "agents.Agent",
        (
            "id",
            "name",
            "agent_type",
            "domain",
            "status",
            "is_active",
            "total_runs",
            "successful_runs",
            "failed_runs",
            "total_tokens_used",
            "total_cost",
            "last_run_at",
            "created_at",
        ),
        numeric=("total_runs", "successful_runs", "failed_runs", "total_tokens_used", "total_cost"),
        dates=("created_at", "last_run_at"),
        base=(("deleted_at__isnull", True),),
    ),
    "tool_calls": Entity(
        "tools.ToolCall",
        (
            "id",
            "agent_id",
            "tool_name",
            "execution_id",
            "status",
            "duration_ms",
            "error_message",
            "started_at",
            "completed_at",
        ),
        numeric=("duration_ms",),
        dates=("started_at", "completed_at"),
    ),
    "approvals": Entity(
        "approvals.ApprovalRequest",
        (
            "id",
            "agent_id",
            "execution_id",
            "action_type",
            "risk_level",
            "status",
            "created_at",
            "resolved_at",
            "expires_at",
        ),
        dates=("created_at", "resolved_at", "expires_at"),
    ),
    "usage": Entity(
        "billing.UsageRecord",
        ("id", "agent_id", "execution_id", "provider", "model", "tokens_input", "tokens_output", "cost", "created_at"),
        numeric=("tokens_input", "tokens_output", "cost"),
        capability="read_financials",
    ),
}

_OPS = {
    "eq": "exact",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "in": "in",
    "contains": "contains",
    "icontains": "icontains",
    "isnull": "isnull",
}


def _entity(call: Invocation) -> Entity:
    name = call.arguments["entity_type"]
    entity = ENTITIES.get(name)
    if entity is None:
        raise ToolError(f"Unknown entity_type {name!r}; use one of {', '.join(ENTITIES)}.")
    if entity.capability:
        call.require(entity.capability, f"reading {name}")
    return entity


def _field(entity: Entity, name: Any, what: str) -> str:
    if name not in entity.fields:
        raise ToolError(f"{what}: {name!r} is not a field of this entity; use one of {', '.join(entity.fields)}.")
    return str(name)


def _base_queryset(call: Invocation, entity: Entity) -> QuerySet:
    model = apps.get_model(entity.model)
    # The organization filter comes first and from the run, never from the model's arguments.
    return model.objects.filter(organization_id=call.organization_id, **dict(entity.base))


def _apply_filters(qs: QuerySet, entity: Entity, filters: Any) -> QuerySet:
    if not filters:
        return qs
    if not isinstance(filters, dict):
        raise ToolError("filters must be an object of {field: value} or {field: {op: value}}.")
    for name, condition in filters.items():
        field = _field(entity, name, "filters")
        conditions = condition if isinstance(condition, dict) else {"eq": condition}
        for op, value in conditions.items():
            if op == "ne":
                qs = qs.exclude(**{field: value})
                continue
            if op not in _OPS:
                raise ToolError(f"Unknown filter operator {op!r}; use eq, ne, {', '.join(list(_OPS)[1:])}.")
            if op == "in" and not isinstance(value, list):
                raise ToolError("The 'in' operator takes a list.")
            qs = qs.filter(**{f"{field}__{_OPS[op]}": value})
    return qs


def _date_range(qs: QuerySet, entity: Entity, date_range: Any) -> QuerySet:
    if not date_range:
        return qs
    field = _field(entity, date_range.get("field") or entity.dates[0], "date_range.field")
    if field not in entity.dates:
        raise ToolError(f"date_range.field must be a date field: {', '.join(entity.dates)}.")
    for key, lookup in (("from", "gte"), ("to", "lt")):
        if date_range.get(key):
            moment = parse_datetime(str(date_range[key]))
            if moment is None:
                raise ToolError(f"date_range.{key} must be an ISO 8601 date-time.")
            qs = qs.filter(**{f"{field}__{lookup}": moment})
    return qs


@contextmanager
def _read_only(timeout_seconds: float) -> Iterator[None]:
    """A read-only transaction (a savepoint inside a caller's) with a statement timeout.

    It always ends in a rollback: the work here only reads, and rolling back also undoes
    the read-only mode and the timeout, which would otherwise outlive a savepoint.
    """
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Defence in depth: even a hole in the whitelist cannot write through here.
                cursor.execute("SET TRANSACTION READ ONLY")
                cursor.execute(f"SET LOCAL statement_timeout = {max(100, int(timeout_seconds * 1000))}")
            yield
            transaction.set_rollback(True)
    except OperationalError as exc:
        raise ToolError("The query took too long or was refused by the database.") from exc
    except (FieldError, ValidationError, ValueError, TypeError, DatabaseError) as exc:
        raise ToolError(f"The query is not valid: {str(exc).splitlines()[0][:300]}") from exc


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return json.loads(json.dumps(rows, cls=DjangoJSONEncoder))


def data_query(call: Invocation) -> dict[str, Any]:
    entity = _entity(call)
    args = call.arguments
    limit = max(1, min(int(args.get("limit") or 100), 500))
    order_by = args.get("order_by") or f"-{entity.dates[0]}"
    _field(entity, order_by.lstrip("-"), "order_by")
    with _read_only(call.remaining()):
        qs = _apply_filters(_base_queryset(call, entity), entity, args.get("filters"))
        rows = list(qs.order_by(order_by).values(*entity.fields)[: limit + 1])
    return {
        "entity_type": args["entity_type"],
        "count": min(len(rows), limit),
        "has_more": len(rows) > limit,
        "rows": _jsonable(rows[:limit]),
    }


def data_aggregate(call: Invocation) -> dict[str, Any]:
    entity = _entity(call)
    args = call.arguments
    metric = str(args["metric"])
    if metric == "count":
        aggregate: Any = Count("pk")
    else:
        function, _, field = metric.partition(":")
        functions = {"sum": Sum, "avg": Avg, "min": Min, "max": Max}
        if function not in functions or field not in entity.numeric:
            raise ToolError(
                f"metric must be count or sum:/avg:/min:/max: with one of {', '.join(entity.numeric) or 'no fields here'}."
            )
        aggregate = functions[function](field)
    with _read_only(call.remaining()):
        qs = _apply_filters(_base_queryset(call, entity), entity, args.get("filters"))
        qs = _date_range(qs, entity, args.get("date_range"))
        group_by = args.get("group_by")
        if not group_by:
            value = qs.aggregate(value=aggregate)["value"]
            return {"entity_type": args["entity_type"], "metric": metric, "value": _jsonable([{"v": value}])[0]["v"]}
        period, _, date_field = str(group_by).partition(":")
        if date_field and period in ("day", "month"):
            if date_field not in entity.dates:
                raise ToolError(f"group_by {period}: needs a date field: {', '.join(entity.dates)}.")
            trunc = TruncDay if period == "day" else TruncMonth
            grouped = qs.annotate(group=trunc(date_field)).values("group")
        else:
            grouped = qs.values(group=F(_field(entity, group_by, "group_by")))
        rows = list(grouped.annotate(value=aggregate).order_by("group")[:500])
    return {"entity_type": args["entity_type"], "metric": metric, "group_by": group_by, "groups": _jsonable(rows)}


def data_export(call: Invocation) -> dict[str, Any]:
    entity = _entity(call)
    args = call.arguments
    limit = max(1, min(int(args.get("limit") or 1000), 5000))
    with _read_only(call.remaining()):
        qs = _apply_filters(_base_queryset(call, entity), entity, args.get("filters"))
        rows = _jsonable(list(qs.order_by(f"-{entity.dates[0]}").values(*entity.fields)[:limit]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(entity.fields))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    return {"entity_type": args["entity_type"], "format": "csv", "rows": len(rows), "csv": buffer.getvalue()}
