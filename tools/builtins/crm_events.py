"""The domain events of the CRM tools (the reference's ``emitEvent('crm.contact.created', …)``).

When a CRM tool changed the organization's data, the change is told to the rest of the
platform: a platform event (the event log, webhooks; schemas in executions.event_catalogue)
and the organization's agents whose ``trigger_events`` match, started as children of this run
(executions.triggers.events_in.domain_event_dispatch). The run's log says what the event
started, what was refused and why. The CRM has already changed when this runs, so a failure
here never fails the tool call: it is rolled back alone and logged as a warning on the run.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from executions.events import event_emit
from executions.models import ExecutionLog
from executions.triggers.events_in import domain_event_dispatch
from tools.builtins.base import Invocation

logger = logging.getLogger(__name__)

# module action -> event type
CRM_EVENTS = {
    "createContact": "crm.contact.created",
    "updateContact": "crm.contact.updated",
    "deleteContact": "crm.contact.deleted",
    "addNote": "crm.note.created",
}


def _answer_id(answer: Any, *keys: str) -> str | None:
    if not isinstance(answer, dict):
        return None
    for key in keys:
        value = answer.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, dict) and isinstance(value.get("id"), (str, int)):
            return str(value["id"])
    return None


def crm_event_payload(call: Invocation, action: str, answer: Any) -> dict[str, Any]:
    args = call.arguments
    payload: dict[str, Any] = {
        "source": "ai_agent",
        "agent_id": str(call.agent_id),
        "execution_id": str(call.execution.pk),
        "tool": call.tool.name,
        "contact_id": str(args["contact_id"])
        if args.get("contact_id")
        else _answer_id(answer, "id", "contact_id", "contact"),
    }
    if action == "createContact":
        payload.update(
            {key: str(args[key]) for key in ("email", "first_name", "last_name", "company") if args.get(key)}
        )
    elif action == "updateContact":
        payload["changes"] = sorted(str(key) for key in (args.get("updates") or {}))
    elif action == "deleteContact":
        if args.get("reason"):
            payload["reason"] = str(args["reason"])
    elif action == "addNote":
        payload["note_type"] = str(args.get("type") or "note")
        payload["note_id"] = _answer_id(answer, "note_id", "id", "note")
    return payload


def crm_event_emit(call: Invocation, action: str, answer: Any) -> None:
    event_type = CRM_EVENTS.get(action)
    if event_type is None:
        return  # a read (getContact, searchContacts): nothing changed
    execution = call.execution
    payload = crm_event_payload(call, action, answer)
    try:
        with transaction.atomic():
            event_emit(
                organization_id=call.organization_id,
                event_type=event_type,
                payload=payload,
                agent_id=call.agent_id,
                execution_id=execution.pk,
            )
            dispatch = domain_event_dispatch(
                execution=execution, event_type=event_type, payload=payload, idempotency_key=call.idempotency_key
            )
    except Exception as exc:  # the CRM changed: never fail the call for its event
        logger.exception("the %s event of execution %s could not be emitted", event_type, execution.pk)
        ExecutionLog.objects.create(
            execution=execution,
            level="warn",
            message=f"The {event_type} event could not be emitted ({type(exc).__name__}); no agent reacted to it.",
            metadata={"event_type": event_type},
        )
        return
    started = [*dispatch.executions, *dispatch.replayed]
    if not (started or dispatch.refused or dispatch.conditions_not_met):
        return
    parts = [f"Event {event_type}: started {len(started)} run(s)"]
    if dispatch.refused:
        reasons = ", ".join(f"{a.agent_id}: {a.code}" for a in dispatch.refused)
        parts.append(f"refused {len(dispatch.refused)} ({reasons})")
    if dispatch.conditions_not_met:
        parts.append(f"{len(dispatch.conditions_not_met)} agent(s) whose trigger_conditions did not hold")
    ExecutionLog.objects.create(
        execution=execution,
        level="warn" if dispatch.refused else "info",
        message="; ".join(parts) + ".",
        metadata={
            "event_type": event_type,
            "event_id": dispatch.event_id,
            "executions": [str(e.pk) for e in started],
            "refused": [{"agent_id": str(a.agent_id), "code": a.code, "message": a.message} for a in dispatch.refused],
        },
    )
