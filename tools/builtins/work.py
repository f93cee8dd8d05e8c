"""task_create, wait, trigger_workflow."""

from __future__ import annotations

import uuid
from importlib import import_module
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string

from agents.models import Agent
from agents.types import delegation_refusal
from config.api.errors import ApiError
from executions.models import TriggerType
from executions.runtime.tools_port import ToolOutcome
from executions.services import execution_start
from tools.builtins.base import Invocation, ToolDenied, ToolError
from tools.builtins.people import member
from tools.services import task_create as create


def task_create(call: Invocation) -> dict[str, Any]:
    args = call.arguments
    due = None
    if args.get("due_date"):
        due = parse_datetime(args["due_date"])
        if due is None or due.tzinfo is None:
            raise ToolError("due_date must be an ISO 8601 date-time with a timezone.")
    assignee = (
        member(organization_id=call.organization_id, ref=args["assigned_to"]) if args.get("assigned_to") else None
    )
    task = create(
        organization_id=call.organization_id,
        title=args["title"],
        description=args.get("description", ""),
        priority=args.get("priority") or "medium",
        due_date=due,
        assigned_to=assignee,
        agent_id=call.agent_id,
        execution_id=call.execution.pk,
        idempotency_key=call.idempotency_key,
    )
    return {
        "task_id": str(task.pk),
        "title": task.title,
        "status": task.status,
        "priority": task.priority,
        "assigned_to": assignee.get_username() if assignee else None,
    }


def wait(call: Invocation) -> ToolOutcome:
    # The runtime parks the run (status waiting, no worker held) and a timer resumes it.
    seconds = int(call.arguments["seconds"])
    return ToolOutcome("wait", output={"waited_seconds": seconds}, wait_seconds=seconds)


def trigger_workflow(call: Invocation) -> dict[str, Any]:
    """Start another agent of the organization (or a platform agent), or a chain.

    The child run is keyed on this call, so a call repeated after a crash finds the run it
    already started instead of starting a second one. When the runtime offers
    ``executions.workflows.workflow_trigger`` (delegation that waits a while for the
    child's result), that does the work; otherwise the child is started and left to run.
    """
    try:
        workflow_trigger = getattr(import_module("executions.workflows"), "workflow_trigger", None)
    except ImportError:
        workflow_trigger = None
    data = call.arguments.get("input_data") or {}
    try:
        if workflow_trigger is not None:
            return dict(
                workflow_trigger(
                    execution=call.execution,
                    workflow_id=call.arguments["workflow_id"],
                    input_data=data,
                    idempotency_key=call.idempotency_key,
                    # Wait for the child within this call's own time, with room to answer.
                    wait_seconds=max(0.0, call.remaining() - 2),
                )
            )
        return _start_child(call, data)
    except ApiError as exc:
        if exc.details.get("reason") == "delegation_refused":
            # Refused, not failed: the run's log says "refused" and the model reads why.
            raise ToolDenied(exc.message) from exc
        raise ToolError(f"The workflow could not start: {exc.message}") from exc


def _start_child(call: Invocation, data: dict[str, Any]) -> dict[str, Any]:
    ref = str(call.arguments["workflow_id"]).strip()
    kind, _, rest = ref.partition(":")
    if kind == "chain" and rest:
        try:
            starter = import_string(getattr(settings, "AGENTRY_CHAIN_STARTER", ""))
        except ImportError:
            raise ToolError("Chains cannot be started on this platform yet.") from None
        return dict(
            starter(
                organization_id=call.organization_id,
                chain_id=rest,
                input_data=data,
                parent_execution=call.execution,
                idempotency_key=f"tool:{call.idempotency_key}",
            )
        )
    agent = _agent(call.organization_id, rest if kind == "agent" and rest else ref)
    refusal = delegation_refusal(call.execution.config or {}, [agent.pk], what=f"agent {agent.name!r} ({agent.pk})")
    if refusal is not None:
        raise ToolDenied(refusal)
    task = data.get("task") if isinstance(data.get("task"), str) else None
    context = (
        data.get("context") if isinstance(data.get("context"), dict) else {k: v for k, v in data.items() if k != "task"}
    )
    execution = call.execution
    child, _created = execution_start(
        agent=agent,
        organization=execution.organization,
        task=task or f"Triggered by agent run {execution.pk}.",
        context=context,
        trigger_type=TriggerType.DELEGATION,
        trigger_data={"parent_execution_id": str(execution.pk), "workflow_id": call.arguments["workflow_id"]},
        idempotency_key=f"tool:{call.idempotency_key}",
        parent=execution,
    )
    return {"started": True, "execution_id": str(child.pk), "agent": agent.name, "status": child.status}


def _agent(organization_id: Any, ref: str) -> Any:
    try:
        match = Q(pk=uuid.UUID(ref))
    except ValueError:
        match = Q(slug=ref)
    # The organization's own agents first, then the platform's shared ones.
    candidates = Agent.objects.filter(match, deleted_at__isnull=True).filter(
        Q(organization_id=organization_id) | Q(organization__isnull=True, visibility__in=["organization", "public"])
    )
    agent = candidates.order_by("organization_id").first()
    if agent is None:
        raise ToolError(f"No agent {ref!r} in this organization.")
    return agent
