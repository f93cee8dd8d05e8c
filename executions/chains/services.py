"""Running chains: start, cancel and watch chain executions.

A chain's definition is agent configuration (``agents.services.chains``); each start copies
it into the ``ChainExecution``, so a run keeps the definition it started with. A Celery task
on the io queue (``executions.chains.tasks``) advances each chain execution step by step
(``executions.chains.runner``); each step is one agent run, started as a workflow node.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.services import activity_record
from agents.access import agent_rights
from agents.models import (
    Agent,
    AgentChain,
    ChainExecution,
    ChainRunStatus,
    ChainStatus,
    ChainStepRun,
    StepRunStatus,
)
from config.api.errors import ApiError, Conflict, InsufficientPermissions, InvalidInput
from executions import telemetry
from executions.chains.tasks import chain_advance_task
from executions.idempotency import check_same_request, idempotency_caller, request_fingerprint, same_caller_q
from executions.models import Execution, TriggerType
from executions.services import MAX_DEPTH, execution_cancel

logger = logging.getLogger(__name__)

MAX_KEY_CHARS = 200


def _check_actor_may_run(actor: Any, chain: AgentChain) -> None:
    ids = {step["agent_id"] for step in chain.steps}
    for agent in Agent.objects.filter(pk__in=ids, organization_id=chain.organization_id):
        if "execute" not in agent_rights(actor, agent):
            raise InsufficientPermissions(
                f"You may not run agent {agent.name!r}, a step of this chain.", details={"agent_id": str(agent.pk)}
            )


def chain_execution_start(
    *,
    chain: AgentChain,
    input: dict[str, Any] | None = None,
    actor: Any = None,
    parent_execution: Any = None,
    idempotency_key: str | None = None,
) -> ChainExecution:
    """Create a pending chain execution and queue it after commit; the same caller's same key
    on the same chain returns the first one, if the input is the same (executions.idempotency)."""
    input = {} if input is None else input
    if not isinstance(input, dict):
        raise InvalidInput(validation_errors={"input": ["Must be a JSON object."]})
    if idempotency_key is not None and not (0 < len(idempotency_key) <= MAX_KEY_CHARS):
        raise InvalidInput(validation_errors={"Idempotency-Key": [f"1 to {MAX_KEY_CHARS} characters."]})
    caller = idempotency_caller(actor)
    fingerprint = request_fingerprint(input=input) if idempotency_key else None
    if idempotency_key:
        existing = _first_with_key(chain, actor, caller, idempotency_key)
        if existing is not None:
            return check_same_request(existing, fingerprint)
    if chain.status != ChainStatus.ACTIVE:
        raise Conflict(f"The chain is {chain.status}; activate it to run it.", details={"status": chain.status})
    if parent_execution is not None and parent_execution.depth + 1 > MAX_DEPTH:
        raise InvalidInput(f"Runs may nest at most {MAX_DEPTH} levels deep.")
    if actor is not None:
        _check_actor_may_run(actor, chain)
    now = timezone.now()
    try:
        with transaction.atomic():
            run = ChainExecution.objects.create(
                organization_id=chain.organization_id,
                chain=chain,
                definition={
                    "name": chain.name,
                    "steps": chain.steps,
                    "error_handling": chain.error_handling,
                    "retry_policy": chain.retry_policy,
                    "timeout_seconds": chain.timeout_seconds,
                },
                input=input,
                parent_execution=parent_execution,
                idempotency_key=idempotency_key or None,
                idempotency_caller=caller if idempotency_key else None,
                request_fingerprint=fingerprint,
                triggered_by_user=actor.user if actor is not None else None,
                deadline_at=now + timedelta(seconds=chain.timeout_seconds),
                trace_context=telemetry.run_trace_context(parent_execution=parent_execution, name="chain"),
            )
            activity_record(
                organization=chain.organization,
                actor=actor,
                action="chain.execution_requested",
                target=run,
                request_summary={
                    "chain": chain.name,
                    "parent_execution_id": str(parent_execution.pk) if parent_execution else None,
                },
            )
            chain_enqueue(run.pk)
    except IntegrityError:
        existing = _first_with_key(chain, actor, caller, idempotency_key)
        if existing is None:
            raise
        return check_same_request(existing, fingerprint)
    return run


def _first_with_key(chain: AgentChain, actor: Any, caller: str, key: str | None) -> ChainExecution | None:
    if not key:
        return None
    rows = ChainExecution.objects.filter(same_caller_q(caller=caller, actor=actor)).filter(
        organization_id=chain.organization_id, idempotency_key=key, chain=chain
    )
    return next(iter(rows.order_by()[:1]), None)  # unordered: the unique index answers


def chain_enqueue(chain_execution_id: Any, *, countdown: float | None = None) -> None:
    """Queue an advance once the surrounding transaction commits (at once outside one)."""

    def send() -> None:
        chain_advance_task.apply_async(args=[str(chain_execution_id)], queue="io", countdown=countdown)

    transaction.on_commit(send)


def chain_execution_cancel(*, chain_execution: ChainExecution, actor: Any = None) -> ChainExecution:
    """Stop the chain: no further step starts, and the step running now is cancelled."""
    with transaction.atomic():
        run = ChainExecution.objects.select_for_update().get(pk=chain_execution.pk)
        if run.is_terminal:
            raise Conflict(f"The chain execution is already {run.status}.", details={"status": run.status})
        now = timezone.now()
        run.status, run.completed_at = ChainRunStatus.CANCELLED, now
        run.error, run.error_code = "Cancelled on request.", "ExecutionCancelled"
        run.save(update_fields=["status", "completed_at", "error", "error_code"])
        open_ids = list(
            ChainStepRun.objects.filter(chain_execution=run, execution__isnull=False)
            .exclude(
                status__in=[
                    StepRunStatus.COMPLETED,
                    StepRunStatus.FAILED,
                    StepRunStatus.TIMED_OUT,
                    StepRunStatus.SKIPPED,
                ]
            )
            .values_list("execution_id", flat=True)
        )
        activity_record(organization=run.organization, actor=actor, action="chain.execution_cancelled", target=run)
    for execution in Execution.objects.filter(pk__in=open_ids):
        with contextlib.suppress(ApiError):  # it ended meanwhile
            execution_cancel(execution=execution, actor=actor)
    return run


def chain_on_execution_finished(execution_id: Any, *, execution: Any = None) -> None:
    """Runtime hook (after a run's finishing commit): a chain step's run ended, so move its
    chain on — the chain may have been waiting for it. ``execution``: the runtime's
    instance; a run not started by a chain is known as such without a query."""
    if execution is not None and execution.trigger_type != TriggerType.CHAIN:
        return
    try:
        row = Execution.objects.filter(pk=execution_id, trigger_type=TriggerType.CHAIN).values("trigger_data").first()
        trigger_data: dict[str, Any] = row["trigger_data"] if row else {}
        chain_execution_id = trigger_data.get("chain_execution_id")
        if chain_execution_id:
            chain_enqueue(chain_execution_id)
    except Exception:
        # Never break the hooks after it; the chains beat job moves the chain on anyway.
        logger.warning("could not queue the chain of execution %s", execution_id, exc_info=True)


def chains_due(*, limit: int = 500) -> list[Any]:
    """For the beat job: cancel step runs past their timeout while they wait, and hand back
    chain executions that nobody advances (lost message, dead worker, due retry)."""
    now = timezone.now()
    overdue = ChainStepRun.objects.filter(
        status=StepRunStatus.WAITING, deadline_at__lt=now, chain_execution__status=ChainRunStatus.RUNNING
    ).values_list("execution_id", flat=True)
    for execution in Execution.objects.filter(pk__in=list(overdue[:limit])):
        if not execution.is_terminal:
            with contextlib.suppress(ApiError):
                execution_cancel(execution=execution)
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    stuck = ChainExecution.objects.filter(
        free, due, status__in=[ChainRunStatus.PENDING, ChainRunStatus.RUNNING]
    ).filter(Q(created_at__lt=now - timedelta(seconds=30)) | Q(deadline_at__lt=now))
    return list(stuck.values_list("pk", flat=True)[:limit])
