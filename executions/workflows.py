"""Agents as nodes of larger workflows: chains, delegation, the platform team's engine.

``execution_run_node`` is the workflow-node contract: run one agent for one node and hand
back ``{execution_id, status: success|error, output, tokens, cost, error}`` (``running`` when
the run goes on without a worker — it waits for a person or a timer, or runs elsewhere; its
end then arrives through the ``after_execution_finished`` hook). Chains
(executions.chains.runner) and delegation (the ``trigger_workflow`` tool, through
``workflow_trigger``) both use it.

A child run's own tokens and cost are added to every ancestor when it finishes
(``execution_rollup_to_parents``), so a parent's totals include its children's.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import F, Q, Sum

from accounts.access import Actor
from agents.models import Agent
from agents.services.chains import chain_for_organization
from agents.types import delegation_refusal, managed_agent_ids
from config.api.errors import ApiError, InsufficientPermissions, InvalidInput, NotFound
from executions.chains.services import chain_execution_start
from executions.models import Execution, ExecutionStatus, ExecutionStep, TriggerType
from executions.runtime.loop import run_execution
from executions.services import execution_cancel
from executions.triggers.common import trigger_start

logger = logging.getLogger(__name__)

S = ExecutionStatus
PARKED = frozenset({S.WAITING, S.WAITING_APPROVAL})
POLL_SECONDS = 0.1


@dataclass
class NodeResult:
    execution_id: str | None
    status: str  # success | error | running
    output: Any = None
    tokens: int = 0
    cost: Decimal = Decimal("0")
    error: str = ""
    error_code: str = ""
    execution_status: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "status": self.status,
            "output": self.output,
            "tokens": self.tokens,
            "cost": str(self.cost),
            "error": self.error or None,
            "error_code": self.error_code or None,
            "execution_status": self.execution_status or None,
        }


def node_result_of(execution: Execution, *, timed_out: bool = False) -> NodeResult:
    result = NodeResult(
        execution_id=str(execution.pk),
        status="running",
        tokens=execution.tokens_total,
        cost=execution.cost,
        execution_status=execution.status,
    )
    if timed_out and execution.is_terminal:
        # Past its timeout the node has failed, even if a model call in flight when it was
        # cancelled still let the run complete: the workflow stopped waiting at the deadline.
        result.status, result.error, result.error_code = "error", "The node ran past its timeout.", "ExecutionTimeout"
    elif execution.status == S.COMPLETED:
        result.status, result.output = "success", execution.output
    elif execution.is_terminal:
        result.status = "error"
        result.output, result.error, result.error_code = execution.output, execution.error, execution.error_code
    return result


class _Watchdog:
    """Cancels the run when the node's timeout passes (the runtime stops at the next step)."""

    def __init__(self, execution_id: Any, seconds: float | None):
        self.fired = False
        self.timer = threading.Timer(seconds, self._fire, args=[execution_id]) if seconds else None
        if self.timer is not None:
            self.timer.daemon = True
            self.timer.start()

    def _fire(self, execution_id: Any) -> None:
        self.fired = True
        try:
            execution = Execution.objects.filter(pk=execution_id).first()
            if execution is not None and not execution.is_terminal:
                execution_cancel(execution=execution)
        except ApiError:
            pass  # it ended meanwhile
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


def _drive(execution: Execution, *, inline: bool, timeout_seconds: float | None, wait_seconds: float) -> NodeResult:
    watchdog = _Watchdog(execution.pk, timeout_seconds) if not execution.is_terminal else _Watchdog(None, None)
    try:
        if inline and not execution.is_terminal:
            # Claiming is exclusive: if a worker already took the queued run, this returns
            # at once and we wait for that worker instead.
            run_execution(execution.pk)
        until = time.monotonic() + wait_seconds
        while True:
            execution.refresh_from_db()
            if execution.is_terminal or execution.status in PARKED or time.monotonic() >= until:
                break
            time.sleep(POLL_SECONDS)
    finally:
        watchdog.stop()
    return node_result_of(execution, timed_out=watchdog.fired)


def execution_run_node(
    *,
    agent: Agent,
    task: str | None = None,
    context: dict[str, Any] | None = None,
    parent: Execution | None = None,
    organization: Any = None,
    actor: Actor | None = None,
    trigger_type: str | None = None,
    trigger_data: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    timeout_seconds: float | None = None,
    inline: bool = True,
    wait_seconds: float | None = None,
) -> NodeResult:
    """Run ``agent`` as one node and return its result (see the module docstring).

    ``task`` falls back to ``context["task"]``. ``inline`` runs the agent in this process
    (else a worker of the io queue does and this waits up to ``wait_seconds``);
    ``timeout_seconds`` cancels the run when it passes. The same ``idempotency_key`` finds the
    run already started instead of starting another (a node retried after a crash).
    Refusals (rate limits, quotas, bad input, depth) come back as ``status: error``.
    """
    context = dict(context or {})
    if not (isinstance(task, str) and task.strip()):
        fallback = context.pop("task", None)
        task = fallback if isinstance(fallback, str) else None
    if not task or not task.strip():
        return NodeResult(None, "error", error="A node needs a task (or context['task']).", error_code="InvalidInput")
    organization = organization or (parent.organization if parent is not None else agent.organization)
    if organization is None:
        return NodeResult(
            None, "error", error="A platform agent needs an organization to run for.", error_code="InvalidInput"
        )
    execution, _created, attempt = trigger_start(
        agent=agent,
        organization=organization,
        trigger_type=trigger_type or (TriggerType.DELEGATION if parent is not None else TriggerType.CHAIN),
        task=task,
        context=context,
        trigger_data=trigger_data,
        idempotency_key=idempotency_key,
        actor=actor,
        parent=parent,
    )
    if attempt is not None or execution is None:
        assert attempt is not None
        return NodeResult(None, "error", error=attempt.message, error_code=attempt.code)
    if wait_seconds is None:
        wait_seconds = float(timeout_seconds or settings.EXECUTION_MAX_SECONDS)
    return _drive(execution, inline=inline, timeout_seconds=timeout_seconds, wait_seconds=wait_seconds)


# --- the trigger_workflow tool ------------------------------------------------------------------


def delegation_check(execution: Execution, target_ids: list[Any], *, what: str) -> None:
    """An orchestrator delegates only to its managed agents (agents.types); the refusal goes
    back to the model as the tool's answer and into the run's log (the tool is refused)."""
    refusal = delegation_refusal(execution.config or {}, target_ids, what=what)
    if refusal is not None:
        raise InsufficientPermissions(
            refusal,
            details={"reason": "delegation_refused", "managed_agents": managed_agent_ids(execution.config or {})},
        )


def _agent_for(organization_id: Any, ref: str) -> Agent:
    try:
        match = Q(pk=uuid.UUID(ref))
    except ValueError:
        match = Q(slug=ref)
    # The organization's own agents first, then the platform's shared ones.
    agent = (
        Agent.objects.filter(match, deleted_at__isnull=True)
        .filter(
            Q(organization_id=organization_id) | Q(organization__isnull=True, visibility__in=["organization", "public"])
        )
        .select_related("current_version")
        .order_by("organization_id")
        .first()
    )
    if agent is None:
        raise NotFound(f"No agent {ref!r} in this organization.", details={"workflow_id": ref})
    return agent


def workflow_trigger(
    *,
    execution: Execution,
    workflow_id: str,
    input_data: dict[str, Any] | None = None,
    idempotency_key: str,
    wait_seconds: float = 25.0,
) -> dict[str, Any]:
    """What ``trigger_workflow`` does: ``chain:<id>`` starts a chain as a child of
    ``execution``; ``agent:<id>``, an agent id or slug delegates to that agent and waits up to
    ``wait_seconds`` for its result (``status: running`` with the execution id after that).

    ``idempotency_key`` is the tool call's: a call repeated after a crash finds the child it
    already started. Raises ApiError (NotFound, InvalidInput, ...) with a clear message.
    """
    ref = str(workflow_id).strip()
    data = dict(input_data or {})
    kind, _, rest = ref.partition(":")
    if kind == "chain" and rest:
        return workflow_chain_start(
            organization_id=execution.organization_id,
            chain_id=rest,
            input_data=data,
            parent_execution=execution,
            idempotency_key=f"tool:{idempotency_key}",
        )
    agent = _agent_for(execution.organization_id, rest if kind == "agent" and rest else ref)
    delegation_check(execution, [agent.pk], what=f"agent {agent.name!r} ({agent.pk})")
    context = (
        data.get("context") if isinstance(data.get("context"), dict) else {k: v for k, v in data.items() if k != "task"}
    )
    result = execution_run_node(
        agent=agent,
        task=data.get("task") if isinstance(data.get("task"), str) else f"Delegated by agent run {execution.pk}.",
        context=context,
        parent=execution,
        trigger_type=TriggerType.DELEGATION,
        trigger_data={"parent_execution_id": str(execution.pk), "workflow_id": ref},
        idempotency_key=f"tool:{idempotency_key}",
        inline=False,
        wait_seconds=wait_seconds,
    )
    return {"agent": agent.name, **result.as_dict()}


def workflow_chain_start(
    *,
    organization_id: Any,
    chain_id: str,
    input_data: dict[str, Any],
    parent_execution: Execution | None,
    idempotency_key: str,
) -> dict[str, Any]:
    """Start a chain for a run (``settings.AGENTRY_CHAIN_STARTER``); returns what to tell the model."""
    chain = chain_for_organization(organization_id=organization_id, ref=chain_id)
    if parent_execution is not None:
        # A chain runs its steps' agents: an orchestrator may start it only if it manages them all.
        step_agents = [step.get("agent_id") for step in chain.steps if isinstance(step, dict)]
        delegation_check(parent_execution, step_agents, what=f"chain {chain.name!r}, which runs agents")
    if not isinstance(input_data, dict):
        raise InvalidInput(validation_errors={"input_data": ["Must be an object."]})
    run = chain_execution_start(
        chain=chain, input=input_data, actor=None, parent_execution=parent_execution, idempotency_key=idempotency_key
    )
    return {"started": True, "chain": chain.name, "chain_execution_id": str(run.pk), "status": run.status}


# --- hook: children's usage counts in their parents --------------------------------------------


def execution_rollup_to_parents(execution_id: Any, *, execution: Any = None) -> None:
    """After a run finished: add its *own* tokens and cost (its steps', not what its own
    children added) to every ancestor, so each run's usage is counted once per ancestor
    whatever order the runs end in. Runs once per finished run (the runtime's finishing
    transition happens once). ``execution``: the runtime's instance; a run without a parent
    (most runs) has nothing to add anywhere, and is known without a query."""
    if execution is not None and execution.parent_id is None:
        return
    try:
        _rollup(execution_id)
    except DatabaseError:
        # After the run's own commit: a blip here must not look like the run failed.
        logger.warning("could not add execution %s to its parents' totals", execution_id, exc_info=True)


def _rollup(execution_id: Any) -> None:
    row = Execution.objects.filter(pk=execution_id).values("parent_id").first()
    if row is None or row["parent_id"] is None:
        return
    own = ExecutionStep.objects.filter(execution_id=execution_id).aggregate(
        tokens_input=Sum("tokens_input"),
        tokens_output=Sum("tokens_output"),
        tokens=Sum("tokens_used"),
        cost=Sum("cost"),
    )
    if not own["tokens"] and not own["cost"]:
        return
    ancestors: list[Any] = []
    current: Any = row["parent_id"]
    while current is not None and len(ancestors) <= 10:  # depth is capped at 5; 10 guards a corrupt loop
        ancestors.append(current)
        current = Execution.objects.filter(pk=current).values_list("parent_id", flat=True).first()
    Execution.objects.filter(pk__in=ancestors).update(
        tokens_input=F("tokens_input") + (own["tokens_input"] or 0),
        tokens_output=F("tokens_output") + (own["tokens_output"] or 0),
        tokens_total=F("tokens_total") + (own["tokens"] or 0),
        cost=F("cost") + (own["cost"] or Decimal("0")),
    )
