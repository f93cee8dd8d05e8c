"""task_create, wait, trigger_workflow."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string

from executions.runtime.tools_port import ToolOutcome
from tools.builtins.base import Invocation, ToolError
from tools.builtins.people import member


def task_create(call: Invocation) -> dict[str, Any]:
    from tools.services import task_create as create

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
    already started instead of starting a second one.
    """
    ref = str(call.arguments["workflow_id"]).strip()
    data = call.arguments.get("input_data") or {}
    kind, _, rest = ref.partition(":")
    if kind == "chain" and rest:
        starter_path = getattr(settings, "AGENTRY_CHAIN_STARTER", "")
        if not starter_path:
            raise ToolError("Chains cannot be started on this platform yet.")
        return dict(
            import_string(starter_path)(
                organization_id=call.organization_id,
                chain_id=rest,
                input_data=data,
                parent_execution=call.execution,
                idempotency_key=f"tool:{call.idempotency_key}",
            )
        )
    if kind == "agent" and rest:
        ref = rest
    from config.api.errors import ApiError
    from executions.models import TriggerType
    from executions.services import execution_start

    agent = _agent(call.organization_id, ref)
    task = data.get("task") if isinstance(data.get("task"), str) else None
    context = (
        data.get("context") if isinstance(data.get("context"), dict) else {k: v for k, v in data.items() if k != "task"}
    )
    execution = call.execution
    try:
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
    except ApiError as exc:
        raise ToolError(f"The run could not start: {exc.message}") from exc
    return {"started": True, "execution_id": str(child.pk), "agent": agent.name, "status": child.status}


def _agent(organization_id: Any, ref: str) -> Any:
    import uuid

    from django.db.models import Q

    from agents.models import Agent

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
