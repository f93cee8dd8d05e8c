"""Writes for executions: start (manual and every trigger), cancel, the tick's work list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.access import Actor
from accounts.services import activity_record
from agents.models import Agent
from agents.selectors import agent_draft_run_config, agent_run_config
from agents.types import type_run_config
from billing.quotas import quota_admit_run
from config.api.errors import ApiError, Conflict, InvalidInput
from config.json_schema import error_line, schema_errors
from executions import telemetry
from executions.idempotency import check_same_request, idempotency_caller, request_fingerprint, same_caller_q
from executions.models import AgentRunWindow, Execution, ExecutionStatus, TriggerType
from executions.runtime.buffers import event_buffer_for
from executions.runtime.finish import Stop, finish_execution
from executions.runtime.owners import owner_is_gone
from executions.tasks import enqueue_execution

S = ExecutionStatus
MAX_TASK_CHARS = 100_000
MAX_DEPTH = 5


def _validate_input(*, task: Any, context: Any, schema: dict | None) -> None:
    errors: dict[str, list[str]] = {}
    if not isinstance(task, str) or not task.strip():
        errors["task"] = ["A non-empty string is required."]
    elif len(task) > MAX_TASK_CHARS:
        errors["task"] = [f"At most {MAX_TASK_CHARS} characters."]
    if not isinstance(context, dict):
        errors["context"] = ["Must be a JSON object."]
    elif schema and (problems := schema_errors(schema, context)):
        errors["context"] = [error_line(p) for p in problems]
    if errors:
        raise ApiError(
            code="InvalidInput",
            message="The input does not match what the agent accepts.",
            details={"validation_errors": errors, "input_schema": schema} if schema else {"validation_errors": errors},
        )


# The agent's runs in the current UTC hour and day, this start counted (AgentRunWindow).
# The windows come from the database's clock, so web processes whose clocks differ never
# move a window back and forth.
_COUNT_RUN = f"""
UPDATE {AgentRunWindow._meta.db_table} SET
    hour_runs = CASE WHEN hour_start >= date_trunc('hour', now(), 'UTC') THEN hour_runs + 1 ELSE 1 END,
    hour_start = greatest(hour_start, date_trunc('hour', now(), 'UTC')),
    day_runs = CASE WHEN day_start >= (now() AT TIME ZONE 'UTC')::date THEN day_runs + 1 ELSE 1 END,
    day_start = greatest(day_start, (now() AT TIME ZONE 'UTC')::date)
WHERE agent_id = %s
RETURNING hour_runs, day_runs
"""  # noqa: S608
# An agent's first start since the counters exist: its runs already in the windows, counted
# once from its executions (an agent that ran before this table existed keeps its limits).
_FIRST_RUN = f"""
INSERT INTO {AgentRunWindow._meta.db_table} (agent_id, hour_start, hour_runs, day_start, day_runs)
SELECT %s, date_trunc('hour', now(), 'UTC'),
    1 + count(*) FILTER (WHERE created_at >= date_trunc('hour', now(), 'UTC')),
    (now() AT TIME ZONE 'UTC')::date,
    1 + count(*)
FROM {Execution._meta.db_table}
WHERE agent_id = %s AND created_at >= date_trunc('day', now(), 'UTC')
ON CONFLICT (agent_id) DO NOTHING
RETURNING hour_runs, day_runs
"""  # noqa: S608


def _count_agent_run(agent: Agent, config: dict[str, Any]) -> None:
    """Count this start in the agent's hour and day windows; refuse it (the caller's
    transaction rolls the count back) past max_runs_per_hour/day.

    Exact under concurrency: the UPDATE locks the agent's window row until the starting
    transaction commits, so concurrent starts of one agent are counted one after the other.
    The windows are the current UTC clock hour and UTC day (fixed, not sliding): an agent
    with max_runs_per_hour=60 may run 60 times in 10:00-10:59 and 60 more from 11:00."""
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_RUN, [agent.pk])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(_FIRST_RUN, [agent.pk, agent.pk])
            row = cursor.fetchone()
        if row is None:  # a concurrent first start inserted the row: count on it
            cursor.execute(_COUNT_RUN, [agent.pk])
            row = cursor.fetchone()
    hour_runs, day_runs = row
    limits = config.get("limits") or {}
    for key, runs in (("max_runs_per_hour", hour_runs), ("max_runs_per_day", day_runs)):
        limit = limits.get(key)
        if limit and runs > limit:
            raise ApiError(
                code="ResourceExhausted",
                message=f"The agent has reached {key}={limit}.",
                details={
                    "resource_usage": {key: limit, "used": runs - 1},
                    "suggested_actions": ["Retry later", f"Raise {key} on the agent"],
                },
            )


def execution_start(
    *,
    agent: Agent,
    organization: Any,
    task: str,
    context: dict[str, Any] | None = None,
    actor: Actor | None = None,
    trigger_type: str = TriggerType.MANUAL,
    trigger_data: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    conversation_id: Any = None,
    max_tokens: int | None = None,
    parent: Execution | None = None,
    history: list[dict[str, str]] | None = None,
    caller_instructions: str = "",
    temperature: float | None = None,
    version: Any = None,
    draft: bool = False,
) -> tuple[Execution, bool]:
    """Create a pending execution and queue it after commit. Returns (execution, created).

    ``history``: earlier turns the caller supplies itself (an OpenAI-style transcript); the
    run uses them instead of its conversation's stored turns. ``caller_instructions``: the
    caller's system text, given to the model as data after the agent's own instructions,
    never in their place. ``temperature``: this run's, within the model's range.

    The same caller's same ``idempotency_key`` on the same agent returns the first execution
    instead, if the request is the same (executions.idempotency). ``version``: run one of the
    agent's published versions instead of the current one (the console's playground).
    ``draft``: run the agent's unpublished draft, validated as publishing would validate it
    and frozen into ``config`` (no ``agent_version``); the caller checked the right to edit
    the agent. Otherwise an ordinary run: priced, quota-checked, rate-limited.
    """
    if draft and version is not None:
        raise InvalidInput(validation_errors={"draft": ["Run the draft or a version, not both."]})
    context = {} if context is None else context
    caller = idempotency_caller(actor)
    fingerprint = None
    if idempotency_key:
        if len(idempotency_key) > 200:
            raise InvalidInput(validation_errors={"Idempotency-Key": ["At most 200 characters."]})
        # "draft" only when set, so the fingerprints of runs of versions stay what they were.
        fingerprint = request_fingerprint(
            task=task,
            context=context,
            max_tokens=max_tokens,
            conversation_id=conversation_id,
            **({"draft": True} if draft else {}),
        )
        existing = _first_with_key(organization, agent, actor, caller, idempotency_key)
        if existing is not None:
            return check_same_request(existing, fingerprint), False
    if max_tokens is not None and (not isinstance(max_tokens, int) or not 1 <= max_tokens <= 200_000):
        raise InvalidInput(validation_errors={"max_tokens": ["A whole number from 1 to 200000."]})
    depth = (parent.depth + 1) if parent else 0
    if depth > MAX_DEPTH:
        raise ApiError(code="InvalidInput", message=f"Runs may nest at most {MAX_DEPTH} levels deep.")
    if agent.status == "archived":
        raise ApiError(code="Conflict", message="Archived agents never run.", details={"status": agent.status})
    version, config, warnings = (
        agent_draft_run_config(agent=agent)
        if draft
        else agent_run_config(agent=agent, organization=organization, version=version)
    )
    _validate_input(task=task, context=context, schema=config.get("input_schema"))
    config = type_run_config(config, organization_id=getattr(organization, "pk", organization), context=context)
    run_input: dict[str, Any] = {"task": task, "context": context}
    if history is not None:
        run_input["history"] = history
    if caller_instructions:
        run_input["instructions"] = caller_instructions
    if temperature is not None:
        # The frozen configuration is what the run uses: the override lives there.
        config = {**config, "model_config": {**(config.get("model_config") or {}), "temperature": temperature}}
    try:
        with transaction.atomic():
            _count_agent_run(agent, config)
            quota_admit_run(organization=organization)
            execution = Execution.objects.create(
                organization=organization,
                agent=agent,
                agent_version=version,
                config=config,
                warnings=warnings,
                trigger_type=trigger_type,
                trigger_data=trigger_data or {},
                triggered_by_user=actor.user if actor else None,  # type: ignore[misc]
                triggered_by_token=actor.token if actor else None,
                parent=parent,
                depth=depth,
                idempotency_key=idempotency_key or None,
                idempotency_caller=caller if idempotency_key else None,
                request_fingerprint=fingerprint,
                input=run_input,
                conversation_id=conversation_id,
                max_tokens=max_tokens,
                trace_context=telemetry.run_trace_context(parent_execution=parent),
            )
            activity_record(
                organization=organization,
                actor=actor,
                action="execution.requested",
                target=execution,
                agent_id=agent.pk,
                request_summary={"trigger_type": trigger_type, "task_chars": len(task)},
            )
            enqueue_execution(execution.pk)
    except IntegrityError:
        # Two requests with one Idempotency-Key: the first one's row wins.
        existing = _first_with_key(organization, agent, actor, caller, idempotency_key)
        if existing is None:
            raise
        return check_same_request(existing, fingerprint), False
    return execution, True


def _first_with_key(
    organization: Any, agent: Agent, actor: Actor | None, caller: str, key: str | None
) -> Execution | None:
    if not key:
        return None
    rows = Execution.objects.filter(same_caller_q(caller=caller, actor=actor)).filter(
        organization=organization, idempotency_key=key, agent=agent
    )
    # Unordered, so the unique index (organization, key, agent, caller) answers rather than
    # an index the planner would pick for an order (exec_agent_created: all the agent's runs).
    return next(iter(rows.order_by()[:1]), None)


def execution_cancel(*, execution: Execution, actor: Actor | None = None) -> Execution:
    """Cancel now when no worker holds the run; else flag it and the runtime stops at the
    next step boundary (a model call in flight finishes first)."""
    with transaction.atomic():
        locked = Execution.objects.select_for_update(no_key=True).get(pk=execution.pk)
        if locked.is_terminal:
            raise Conflict(f"The execution is already {locked.status}.", details={"status": locked.status})
        activity_record(
            organization=locked.organization,
            actor=actor,
            action="execution.cancel",
            target=locked,
            agent_id=locked.agent_id,
        )
        if locked.status == S.RUNNING:
            Execution.objects.filter(pk=locked.pk).update(cancel_requested=True)
            locked.cancel_requested = True
            return locked
        finish_execution(
            locked,
            Stop(S.CANCELLED, "Cancelled on request.", "ExecutionCancelled"),
            events=event_buffer_for(locked.pk),
        )
    locked.refresh_from_db()
    return locked


def executions_due(*, limit: int = 500) -> list[Any]:
    """Runs to hand to a worker: dead leases, due timers, approved runs nobody picked up."""
    now = timezone.now()
    stale = Q(status=S.RUNNING) & (Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))
    due = Q(status=S.WAITING, wait_until__lte=now)
    # A pending run queued a while ago and never claimed (its message was lost with a broker
    # restart) is queued again; claiming is idempotent.
    lost = Q(status=S.PENDING, created_at__lt=now - timedelta(seconds=settings.EXECUTION_REQUEUE_PENDING_AFTER_SECONDS))
    ids = list(Execution.objects.filter(stale | due | lost).values_list("pk", flat=True)[:limit])
    # Live leases whose holder is a process of this machine that has exited (a killed
    # worker): handed out now rather than when the lease runs out.
    held = Execution.objects.filter(status=S.RUNNING, lease_expires_at__gte=now).exclude(lease_owner="")
    ids += [pk for pk, owner in held.values_list("pk", "lease_owner")[:limit] if owner_is_gone(owner)]
    return ids
