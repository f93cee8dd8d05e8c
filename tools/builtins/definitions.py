"""The built-in tools: the reference's seeds (``ai_agent_tools``), made real.

Pure data, synced into ``Tool`` rows by ``manage.py sync_tools`` (``tools.services.tools_sync``).
Departures from the reference, and why:
- ``email_send`` is an internal handler on Django's email framework (no email module here).
- ``data_export`` and ``crm_delete_contact`` are added: the reference's risk rules name them
  (high and critical), so they exist to be held back.
- ``web_search`` and ``web_scrape`` are marked ``untrusted_output``: they bring text from the
  open web into a run, so what the run teaches the agent's memory is trusted less.
- Schemas forbid unknown arguments (``additionalProperties: false``): a model's invented
  argument is an error it is told about, not something silently passed on.
- Addresses are ``format: email`` (which refuses CR, LF, NUL and other control characters) and
  subjects and member references are one line: what goes into a mail header cannot start
  another header. The arguments are checked before the approval policy, so such a call is
  refused before anyone is asked to approve it.
"""

from __future__ import annotations

from typing import Any

_STR: dict[str, Any] = {"type": "string"}
_DATETIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_EMAIL: dict[str, Any] = {"type": "string", "format": "email"}
_ONE_LINE = r"^[^\x00-\x1f\x7f]*$"  # no control characters: no CR/LF to start a new header line
_MEMBER: dict[str, Any] = {
    "type": "string",
    "pattern": _ONE_LINE,
    "description": "A member's user id, username or email",
}
_SUBJECT: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 500, "pattern": _ONE_LINE}


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


def _tool(
    name: str,
    display_name: str,
    description: str,
    category: str,
    parameters: dict[str, Any],
    handler_type: str,
    handler_config: dict[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "display_name": display_name,
        "description": description,
        "category": category,
        "parameters_schema": parameters,
        "returns_schema": fields.pop("returns_schema", None),
        "handler_type": handler_type,
        "handler_config": handler_config,
        "requires_permissions": fields.pop("requires_permissions", []),
        "requires_modules": fields.pop("requires_modules", []),
        "rate_limit_per_minute": fields.pop("rate_limit_per_minute", None),
        "rate_limit_per_hour": fields.pop("rate_limit_per_hour", None),
        "timeout_seconds": fields.pop("timeout_seconds", 30),
        "is_idempotent": fields.pop("is_idempotent", False),
        "is_dangerous": fields.pop("is_dangerous", False),
        "untrusted_output": fields.pop("untrusted_output", False),
        **fields,
    }


_ENTITY = {"type": "string", "description": "What to read: one of the entity types listed in the tool description."}

BUILTIN_TOOLS: list[dict[str, Any]] = [
    # --- CRM: the organization's CRM module, over HTTP ---------------------------------
    _tool(
        "crm_get_contact",
        "Get Contact",
        "Retrieve a contact by ID or email address.",
        "crm",
        _obj(
            {"contact_id": {"type": "string", "description": "Contact ID"}, "email": _EMAIL},
            oneOf=[{"required": ["contact_id"]}, {"required": ["email"]}],
        ),
        "module",
        {"module": "crm", "action": "getContact"},
        requires_permissions=["read_contacts"],
        requires_modules=["crm"],
        is_idempotent=True,
    ),
    _tool(
        "crm_search_contacts",
        "Search Contacts",
        "Search contacts by name, email, company, or tags.",
        "crm",
        _obj(
            {
                "query": _STR,
                "tags": {"type": "array", "items": _STR},
                "status": {"type": "string", "enum": ["active", "inactive", "lead", "customer"]},
                "limit": {"type": "integer", "default": 10, "minimum": 1, "maximum": 100},
            },
            ["query"],
        ),
        "module",
        {"module": "crm", "action": "searchContacts"},
        requires_permissions=["read_contacts"],
        requires_modules=["crm"],
        is_idempotent=True,
    ),
    _tool(
        "crm_create_contact",
        "Create Contact",
        "Create a new contact in the CRM.",
        "crm",
        _obj(
            {
                "email": _EMAIL,
                "first_name": _STR,
                "last_name": _STR,
                "company": _STR,
                "phone": _STR,
                "tags": {"type": "array", "items": _STR},
                "custom_fields": {"type": "object"},
            },
            ["email"],
        ),
        "module",
        {"module": "crm", "action": "createContact"},
        requires_permissions=["write_contacts"],
        requires_modules=["crm"],
    ),
    _tool(
        "crm_update_contact",
        "Update Contact",
        "Update an existing contact.",
        "crm",
        _obj({"contact_id": _STR, "updates": {"type": "object"}}, ["contact_id", "updates"]),
        "module",
        {"module": "crm", "action": "updateContact"},
        requires_permissions=["write_contacts"],
        requires_modules=["crm"],
    ),
    _tool(
        "crm_add_note",
        "Add Contact Note",
        "Add a note to a contact.",
        "crm",
        _obj(
            {
                "contact_id": _STR,
                "content": _STR,
                "type": {"type": "string", "enum": ["note", "call", "meeting", "email"]},
            },
            ["contact_id", "content"],
        ),
        "module",
        {"module": "crm", "action": "addNote"},
        requires_permissions=["write_contacts"],
        requires_modules=["crm"],
    ),
    _tool(
        "crm_delete_contact",
        "Delete Contact",
        "Delete a contact from the CRM. Always reviewed by a person first.",
        "crm",
        _obj({"contact_id": _STR, "reason": _STR}, ["contact_id"]),
        "module",
        {"module": "crm", "action": "deleteContact"},
        requires_permissions=["delete_contacts"],
        requires_modules=["crm"],
        is_dangerous=True,
    ),
    # --- Communication -----------------------------------------------------------------
    _tool(
        "email_send",
        "Send Email",
        "Send an email to one or more recipients.",
        "communication",
        _obj(
            {
                "to": {"type": "array", "items": _EMAIL, "minItems": 1, "maxItems": 50},
                "subject": _SUBJECT,
                "body": {"type": "string", "minLength": 1, "maxLength": 100_000},
                "template_id": {
                    "type": "string",
                    "description": "An email template of the organization: its rendered subject and body are "
                    "sent instead of the subject and body given here.",
                },
                "variables": {
                    "type": "object",
                    "description": "Values the template's {{ placeholders }} take (with template_id).",
                },
            },
            ["to", "subject", "body"],
        ),
        "internal",
        {"handler": "email_send"},
        requires_permissions=["send_emails"],
        rate_limit_per_minute=20,
        rate_limit_per_hour=200,
    ),
    _tool(
        "email_draft",
        "Draft Email",
        "Create an email draft for a person to review; nothing is sent.",
        "communication",
        _obj(
            {
                "to": {"type": "array", "items": _EMAIL, "minItems": 1, "maxItems": 50},
                "subject": _SUBJECT,
                "body": {"type": "string", "minLength": 1, "maxLength": 100_000},
            },
            ["to", "subject", "body"],
        ),
        "internal",
        {"handler": "email_draft"},
        is_idempotent=True,
    ),
    # --- Calendar: the organization's booking module -------------------------------------
    _tool(
        "calendar_create_event",
        "Create Calendar Event",
        "Schedule a new calendar event.",
        "calendar",
        _obj(
            {
                "title": _STR,
                "start_time": _DATETIME,
                "end_time": _DATETIME,
                "attendees": {"type": "array", "items": _EMAIL},
                "description": _STR,
            },
            ["title", "start_time", "end_time"],
        ),
        "module",
        {"module": "booking", "action": "createEvent"},
        requires_permissions=["make_api_calls"],
        requires_modules=["booking"],
    ),
    _tool(
        "calendar_check_availability",
        "Check Availability",
        "Check calendar availability for a time range.",
        "calendar",
        _obj({"start_time": _DATETIME, "end_time": _DATETIME, "user_id": _STR}, ["start_time", "end_time"]),
        "module",
        {"module": "booking", "action": "checkAvailability"},
        requires_modules=["booking"],
        is_idempotent=True,
    ),
    # --- Tasks ---------------------------------------------------------------------------
    _tool(
        "task_create",
        "Create Task",
        "Create a new task for people of the organization.",
        "task",
        _obj(
            {
                "title": {"type": "string", "minLength": 1, "maxLength": 300},
                "description": _STR,
                "due_date": _DATETIME,
                "priority": {"type": "string", "enum": ["low", "medium", "high"]},
                "assigned_to": _MEMBER,
            },
            ["title"],
        ),
        "internal",
        {"handler": "task_create"},
        requires_permissions=["create_tasks"],
        is_idempotent=True,
    ),
    # --- Data: read-only, organization-scoped, whitelisted entities -----------------------
    _tool(
        "data_query",
        "Query Data",
        "Read records of the organization. Entity types: tasks, email_drafts, executions, agents, "
        "tool_calls, approvals, usage. Filters: {field: value} or {field: {op: value}} with ops "
        "eq, ne, gt, gte, lt, lte, in, contains, icontains, isnull.",
        "data",
        _obj(
            {
                "entity_type": _ENTITY,
                "filters": {"type": "object"},
                "limit": {"type": "integer", "default": 100, "minimum": 1, "maximum": 500},
                "order_by": _STR,
            },
            ["entity_type"],
        ),
        "internal",
        {"handler": "data_query"},
        is_idempotent=True,
        timeout_seconds=10,
    ),
    _tool(
        "data_aggregate",
        "Aggregate Data",
        "Aggregated statistics over the organization's records. metric: count, or sum:/avg:/min:/max: "
        "followed by a numeric field (sum:cost). group_by: a field, or day:/month: followed by a date field.",
        "data",
        _obj(
            {
                "entity_type": _ENTITY,
                "metric": _STR,
                "group_by": _STR,
                "filters": {"type": "object"},
                "date_range": _obj({"from": _DATETIME, "to": _DATETIME, "field": _STR}),
            },
            ["entity_type", "metric"],
        ),
        "internal",
        {"handler": "data_aggregate"},
        is_idempotent=True,
        timeout_seconds=10,
    ),
    _tool(
        "data_export",
        "Export Data",
        "Export the organization's records as CSV (same entity types and filters as data_query).",
        "data",
        _obj(
            {
                "entity_type": _ENTITY,
                "filters": {"type": "object"},
                "limit": {"type": "integer", "default": 1000, "minimum": 1, "maximum": 5000},
            },
            ["entity_type"],
        ),
        "internal",
        {"handler": "data_export"},
        is_idempotent=True,
        timeout_seconds=20,
    ),
    # --- Web -------------------------------------------------------------------------------
    _tool(
        "web_search",
        "Web Search",
        "Search the web for information.",
        "web",
        _obj(
            {"query": {"type": "string", "minLength": 1}, "num_results": {"type": "integer", "default": 5}}, ["query"]
        ),
        "external",
        {"handler": "web_search"},
        requires_permissions=["access_web"],
        requires_modules=["search"],
        rate_limit_per_minute=30,
        is_idempotent=True,
        untrusted_output=True,
        timeout_seconds=20,
    ),
    _tool(
        "web_scrape",
        "Scrape Webpage",
        "Fetch a public web page and return its text. selector: an optional CSS selector (tag, .class, #id).",
        "web",
        _obj({"url": {"type": "string", "minLength": 1, "maxLength": 2000}, "selector": _STR}, ["url"]),
        "external",
        {"handler": "web_scrape"},
        requires_permissions=["access_web"],
        rate_limit_per_minute=30,
        is_idempotent=True,
        untrusted_output=True,
        timeout_seconds=20,
    ),
    # --- System ----------------------------------------------------------------------------
    _tool(
        "wait",
        "Wait",
        "Pause execution for a specified duration; no worker is held while waiting.",
        "system",
        _obj({"seconds": {"type": "integer", "minimum": 1, "maximum": 3600}}, ["seconds"]),
        "internal",
        {"handler": "wait"},
        is_idempotent=True,
    ),
    _tool(
        "notify_user",
        "Notify User",
        "Send a notification to a member of the organization (in_app, email) or to a phone number (sms).",
        "system",
        _obj(
            {
                "user_id": _MEMBER,
                "message": {"type": "string", "minLength": 1, "maxLength": 2000},
                "channel": {"type": "string", "enum": ["in_app", "email", "sms"], "default": "in_app"},
                "phone": {"type": "string", "pattern": r"^\+[1-9][0-9]{6,14}$", "description": "E.164, for sms"},
            },
            ["message"],
        ),
        "internal",
        {"handler": "notify_user"},
        rate_limit_per_minute=30,
    ),
    _tool(
        "trigger_workflow",
        "Trigger Workflow",
        "Start another agent (workflow_id: its id or slug, or agent:<id>) or a chain (chain:<id>).",
        "system",
        _obj({"workflow_id": {"type": "string", "minLength": 1}, "input_data": {"type": "object"}}, ["workflow_id"]),
        "workflow",
        {"handler": "trigger_workflow", "action": "trigger"},
        requires_permissions=["trigger_workflows"],
        is_idempotent=True,
    ),
    # --- Knowledge -------------------------------------------------------------------------
    _tool(
        "knowledge_search",
        "Search Knowledge",
        "Search the knowledge bases linked to this agent; returns the most relevant passages with their source.",
        "knowledge",
        _obj(
            {
                "query": {"type": "string", "minLength": 1, "maxLength": 2000},
                "k": {"type": "integer", "minimum": 1, "maximum": 20},
            },
            ["query"],
        ),
        "internal",
        {"handler": "knowledge_search"},
        is_idempotent=True,
    ),
]

BUILTIN_NAMES = frozenset(t["name"] for t in BUILTIN_TOOLS)
