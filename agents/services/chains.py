"""Chains: define, change, delete; start, cancel and watch chain executions.

Running them is agents.services.chain_runner (a Celery task on the io queue advances each
chain execution step by step; each step is one agent run, started as a workflow node).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.services import activity_record
from agents.access import agent_rights
from agents.models import (
    AgentChain,
    ChainExecution,
    ChainRunStatus,
    ChainStatus,
    ChainStepRun,
    StepRunStatus,
)
from agents.validation.chains import chain_definition_validate
from billing.quotas import plan_feature_require
from config.api.errors import ApiError, Conflict, InsufficientPermissions, InvalidInput, NotFound
from executions import telemetry
from executions.idempotency import check_same_request, idempotency_caller, request_fingerprint, same_caller_q

logger = logging.getLogger(__name__)

FIELDS = ("name", "description", "status", "steps", "error_handling", "retry_policy", "timeout_seconds")
MAX_KEY_CHARS = 200


def _check_keys(data: dict[str, Any]) -> None:
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput("The chain is invalid.", validation_errors={key: ["Unknown field."] for key in unknown})


def _ensure_name_free(organization_id: Any, name: str, exclude_pk: Any = None) -> None:
    qs = (
        AgentChain.objects.filter(organization_id=organization_id)
        .annotate(lower=Lower("name"))
        .filter(lower=name.lower())
    )
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    if qs.exists():
        raise InvalidInput("The chain is invalid.", validation_errors={"name": [f"A chain named {name!r} exists."]})


def chain_as_data(chain: AgentChain) -> dict[str, Any]:
    return {field: getattr(chain, field) for field in FIELDS}


def _record(actor: Any, chain: AgentChain, action: str, by_user: Any = None, summary: dict | None = None) -> None:
    activity_record(
        organization=chain.organization,
        actor=actor,
        user=by_user,
        action=action,
        target=chain,
        request_summary=summary or {},
    )


@transaction.atomic
def chain_create(*, actor: Any, data: dict[str, Any], organization: Any = None, by_user: Any = None) -> AgentChain:
    """Validate the whole definition (agents, mappings, cycles) and save it."""
    _check_keys(data)
    organization = actor.organization if actor is not None else organization
    plan_feature_require(organization=organization, feature="chains", user=actor.user if actor is not None else by_user)
    clean = chain_definition_validate(data, organization_id=organization.pk, actor=actor)
    _ensure_name_free(organization.pk, clean["name"])
    user = actor.user if actor is not None else by_user
    try:
        with transaction.atomic():
            chain = AgentChain.objects.create(organization=organization, created_by=user, updated_by=user, **clean)
    except IntegrityError as exc:  # a concurrent create took the name
        raise InvalidInput("The chain is invalid.", validation_errors={"name": ["This name is taken."]}) from exc
    _record(actor, chain, "chain.created", by_user, {"name": chain.name, "steps": len(chain.steps)})
    return chain


@transaction.atomic
def chain_update(*, actor: Any, chain: AgentChain, data: dict[str, Any], by_user: Any = None) -> AgentChain:
    """Change any fields; the result is validated as a whole. Runs in flight keep the
    definition they started with."""
    _check_keys(data)
    chain = AgentChain.objects.select_for_update().get(pk=chain.pk)
    merged = {**chain_as_data(chain), **data}
    clean = chain_definition_validate(merged, organization_id=chain.organization_id, actor=actor)
    if clean["name"].lower() != chain.name.lower():
        _ensure_name_free(chain.organization_id, clean["name"], exclude_pk=chain.pk)
    changed = [key for key, value in clean.items() if getattr(chain, key) != value]
    for key in changed:
        setattr(chain, key, clean[key])
    if changed:
        chain.updated_by = actor.user if actor is not None else by_user
        chain.save(update_fields=[*changed, "updated_by", "updated_at"])
        _record(actor, chain, "chain.updated", by_user, {"changes": changed})
    return chain


@transaction.atomic
def chain_delete(*, actor: Any, chain: AgentChain, by_user: Any = None) -> None:
    if chain.executions.filter(status__in=[ChainRunStatus.PENDING, ChainRunStatus.RUNNING]).exists():
        raise Conflict("The chain has executions in flight; cancel them first.")
    _record(actor, chain, "chain.deleted", by_user, {"name": chain.name})
    chain.delete()


def chain_for_organization(*, organization_id: Any, ref: str) -> AgentChain:
    """A chain of the organization by id or (case-insensitive) name."""
    try:
        match = Q(pk=uuid.UUID(str(ref)))
    except ValueError:
        match = Q(name__iexact=str(ref))
    chain = AgentChain.objects.filter(match, organization_id=organization_id).first()
    if chain is None:
        raise NotFound(f"No chain {ref!r} in this organization.", details={"chain_id": str(ref)})
    return chain


def _check_actor_may_run(actor: Any, chain: AgentChain) -> None:
    from agents.models import Agent

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
    from executions.services import MAX_DEPTH

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
    from agents.tasks import chain_advance_task

    def send() -> None:
        chain_advance_task.apply_async(args=[str(chain_execution_id)], queue="io", countdown=countdown)

    transaction.on_commit(send)


def chain_execution_cancel(*, chain_execution: ChainExecution, actor: Any = None) -> ChainExecution:
    """Stop the chain: no further step starts, and the step running now is cancelled."""
    from executions.models import Execution
    from executions.services import execution_cancel

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


def chain_on_execution_finished(execution_id: Any) -> None:
    """Runtime hook (after a run's finishing commit): a chain step's run ended, so move its
    chain on — the chain may have been waiting for it."""
    from executions.models import Execution, TriggerType

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
    from executions.models import Execution
    from executions.services import execution_cancel

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
