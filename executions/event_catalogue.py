"""Every platform event, described (the reference's EVENT_REGISTRY): what ``GET
/api/v1/event-types/`` answers, so an integrator can build on events without reading code.

``payload_schema`` is a JSON Schema of the payload ``event_emit`` writes; a test holds each
schema to the events the platform really emits, and the catalogue to ``events.EVENT_TYPES``.
"""

from __future__ import annotations

from typing import Any

_UUID = {"type": "string", "format": "uuid"}
_NULLABLE_UUID = {"type": ["string", "null"], "format": "uuid"}
_TEXT = {"type": "string"}
_INT = {"type": "integer"}
_MONEY = {"type": "string", "description": "US dollars, a decimal string"}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_AGENT = {"id": _UUID, "name": _TEXT}
_ACTIONS = {
    "type": "array",
    "items": _object({"step_number": _INT, "tool": _TEXT, "status": _TEXT}, ["step_number", "tool", "status"]),
}
_FINISHED = {
    "execution_id": _UUID,
    "agent_id": _UUID,
    "status": _TEXT,
    "error": _TEXT,
    "error_code": _TEXT,
    "tokens": _INT,
    "tokens_used": _INT,
    "cost": _MONEY,
    "actions_taken": _ACTIONS,
    "duration_ms": _INT,
}

EVENT_CATALOGUE: dict[str, dict[str, Any]] = {
    "ai.agent.created": {
        "name": "Agent Created",
        "description": "An agent was created (from scratch, a template or a copy).",
        "trigger_label": "When an AI agent is created",
        "payload_schema": _object({**_AGENT, "type": _TEXT, "domain": _TEXT}, ["id", "name", "type", "domain"]),
    },
    "ai.agent.updated": {
        "name": "Agent Updated",
        "description": "An agent's draft, status or current version changed.",
        "trigger_label": "When an AI agent is updated",
        "payload_schema": _object(
            {"id": _UUID, "changes": {"type": "array", "items": _TEXT}, "status": _TEXT, "version": _TEXT},
            ["id", "changes"],
        ),
    },
    "ai.agent.deleted": {
        "name": "Agent Deleted",
        "description": "An agent was deleted.",
        "trigger_label": "When an AI agent is deleted",
        "payload_schema": _object(_AGENT, ["id", "name"]),
    },
    "ai.agent.activated": {
        "name": "Agent Activated",
        "description": "An agent was switched on: its triggers fire again.",
        "trigger_label": "When an AI agent is activated",
        "payload_schema": _object(_AGENT, ["id", "name"]),
    },
    "ai.agent.deactivated": {
        "name": "Agent Deactivated",
        "description": "An agent was switched off (by a person, or archived): its triggers no longer fire.",
        "trigger_label": "When an AI agent is deactivated",
        "payload_schema": _object(_AGENT, ["id", "name"]),
    },
    "ai.execution.started": {
        "name": "Agent Execution Started",
        "description": "A run of an agent began.",
        "trigger_label": "When an AI agent starts a run",
        "payload_schema": _object(
            {"execution_id": _UUID, "agent_id": _UUID, "trigger_type": _TEXT},
            ["execution_id", "agent_id", "trigger_type"],
        ),
    },
    "ai.execution.completed": {
        "name": "Agent Execution Completed",
        "description": "A run of an agent completed with an answer.",
        "trigger_label": "When an AI agent completes execution",
        "payload_schema": _object(
            _FINISHED, ["execution_id", "agent_id", "actions_taken", "tokens_used", "duration_ms"]
        ),
    },
    "ai.execution.failed": {
        "name": "Agent Execution Failed",
        "description": "A run of an agent failed or timed out; error and error_code say why.",
        "trigger_label": "When an AI agent's run fails",
        "payload_schema": _object(_FINISHED, ["execution_id", "agent_id", "error"]),
    },
    "ai.approval.requested": {
        "name": "Approval Requested",
        "description": "A run holds a tool call until a person approves or denies it.",
        "trigger_label": "When an AI agent needs approval",
        "payload_schema": _object(
            {
                "approval_id": _UUID,
                "agent_id": _UUID,
                "execution_id": _UUID,
                "action_type": _TEXT,
                "risk_level": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
            },
            ["approval_id", "agent_id", "action_type", "risk_level"],
        ),
    },
    "ai.approval.resolved": {
        "name": "Approval Resolved",
        "description": "A held tool call was approved, denied or expired.",
        "trigger_label": "When an approval is granted or denied",
        "payload_schema": _object(
            {
                "approval_id": _UUID,
                "approved": {"type": "boolean"},
                "status": _TEXT,
                "resolved_by": {"type": ["integer", "null"]},
                "execution_id": _NULLABLE_UUID,
                "params_edited": {"type": "boolean"},
            },
            ["approval_id", "approved", "resolved_by"],
        ),
    },
    "ai.goal.achieved": {
        "name": "Goal Achieved",
        "description": "An agent's goal reached its target (a platform metric after a run, or a reported value).",
        "trigger_label": "When an AI agent achieves a goal",
        "payload_schema": _object(
            {"agent_id": _UUID, "goal_id": _UUID, "name": _TEXT, "metric": _TEXT, "value": _TEXT, "target": _TEXT},
            ["agent_id", "goal_id", "name", "metric", "value"],
        ),
    },
    "ai.guardian.breach": {
        "name": "Guardian Rule Breached",
        "description": (
            "A guardian agent's monitoring rule was breached by the agents it watches (failure rate, cost, "
            "latency, approval backlog or run count over the rule's window); once per rule and window."
        ),
        "trigger_label": "When an AI guardian detects a breach",
        "payload_schema": _object(
            {
                "guardian_id": _UUID,
                "guardian_name": _TEXT,
                "alert_id": _UUID,
                "rule": _TEXT,
                "metric": _TEXT,
                "value": {"type": "number"},
                "threshold": {"type": "number"},
                "window": _TEXT,
                "window_start": {"type": "string", "format": "date-time"},
                "severity": _TEXT,
                "action": _TEXT,
                "sample_size": _INT,
                "watched_agents": {"type": "array", "items": _UUID},
                "execution_id": _NULLABLE_UUID,
                "run_error": {"type": ["string", "null"]},
            },
            [
                "guardian_id",
                "alert_id",
                "rule",
                "metric",
                "value",
                "threshold",
                "window",
                "window_start",
                "severity",
                "action",
                "watched_agents",
                "execution_id",
            ],
        ),
    },
}
_CRM_SOURCE = {
    "source": {"type": "string", "enum": ["ai_agent"]},
    "agent_id": _UUID,
    "execution_id": _UUID,
    "tool": _TEXT,
    "contact_id": {"type": ["string", "null"]},
}
_CRM_REQUIRED = ["source", "agent_id", "execution_id", "tool", "contact_id"]
EVENT_CATALOGUE.update(
    {
        "crm.contact.created": {
            "category": "CRM",
            "name": "Contact Created",
            "description": "An agent created a contact in the organization's CRM (crm_create_contact).",
            "trigger_label": "When an AI agent creates a CRM contact",
            "payload_schema": _object(
                {**_CRM_SOURCE, "email": _TEXT, "first_name": _TEXT, "last_name": _TEXT, "company": _TEXT},
                [*_CRM_REQUIRED, "email"],
            ),
        },
        "crm.contact.updated": {
            "category": "CRM",
            "name": "Contact Updated",
            "description": "An agent changed a CRM contact (crm_update_contact); changes names the fields.",
            "trigger_label": "When an AI agent updates a CRM contact",
            "payload_schema": _object(
                {**_CRM_SOURCE, "changes": {"type": "array", "items": _TEXT}}, [*_CRM_REQUIRED, "changes"]
            ),
        },
        "crm.contact.deleted": {
            "category": "CRM",
            "name": "Contact Deleted",
            "description": "An agent deleted a CRM contact (crm_delete_contact, after a person approved it).",
            "trigger_label": "When an AI agent deletes a CRM contact",
            "payload_schema": _object({**_CRM_SOURCE, "reason": _TEXT}, _CRM_REQUIRED),
        },
        "crm.note.created": {
            "category": "CRM",
            "name": "Contact Note Added",
            "description": "An agent added a note, call, meeting or email record to a contact (crm_add_note).",
            "trigger_label": "When an AI agent adds a note to a CRM contact",
            "payload_schema": _object(
                {**_CRM_SOURCE, "note_type": _TEXT, "note_id": {"type": ["string", "null"]}},
                [*_CRM_REQUIRED, "note_type"],
            ),
        },
    }
)
CATEGORY = "AI Agents"


def event_type_list() -> list[dict[str, Any]]:
    return [{"id": key, "category": CATEGORY, **entry} for key, entry in EVENT_CATALOGUE.items()]
