"""Writes for tools: the built-in registry sync, organizations' HTTP tools, capability
grants, module endpoints, the call log, and the rows built-in tools create."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from accounts.access import Actor
from accounts.services import activity_record
from config.api.errors import ApiError, InvalidInput
from config.json_schema import schema_problems
from tools.builtins.base import ToolError
from tools.builtins.definitions import BUILTIN_NAMES, BUILTIN_TOOLS
from tools.email_templates import template_problems
from tools.models import (
    AgentCapabilityGrant,
    Capability,
    EmailDraft,
    EmailTemplate,
    HandlerType,
    ModuleEndpoint,
    Notification,
    Task,
    Tool,
    ToolCall,
    ToolCallStatus,
)
from tools.ssrf import UnresolvableHost, check_url
from tools.view_cache import registry_changed

TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_SYNCED_FIELDS = (
    "display_name",
    "description",
    "category",
    "parameters_schema",
    "returns_schema",
    "handler_type",
    "handler_config",
    "requires_permissions",
    "requires_modules",
    "rate_limit_per_minute",
    "rate_limit_per_hour",
    "timeout_seconds",
    "is_idempotent",
    "is_dangerous",
    "untrusted_output",
)


# --- The built-in registry ----------------------------------------------------------------


def tools_sync() -> str:
    """Create or update every built-in tool; retire system tools no longer built in.

    ``is_active`` of an existing row is left alone: an operator who switched a tool off
    keeps it off across upgrades.
    """
    created = updated = 0
    with transaction.atomic():
        existing = {t.name: t for t in Tool.objects.select_for_update().filter(organization__isnull=True)}
        for definition in BUILTIN_TOOLS:
            row = existing.get(definition["name"])
            values = {field: definition[field] for field in _SYNCED_FIELDS}
            if row is None:
                Tool.objects.create(name=definition["name"], is_system=True, is_active=True, **values)
                created += 1
                continue
            changed = [field for field, value in values.items() if getattr(row, field) != value]
            if changed or not row.is_system:
                for field in changed:
                    setattr(row, field, values[field])
                row.is_system = True
                row.save(update_fields=[*changed, "is_system", "updated_at"])
                updated += 1
        retired = (
            Tool.objects.filter(organization__isnull=True, is_system=True, is_active=True)
            .exclude(name__in=BUILTIN_NAMES)
            .update(is_active=False)
        )
        if retired:
            registry_changed()  # an UPDATE sends no signal (tools.view_cache)
    return f"tools: {created} created, {updated} updated, {retired} retired, {len(BUILTIN_TOOLS)} built in"


# --- Organizations' HTTP tools ---------------------------------------------------------


def _check_schemas(values: dict[str, Any]) -> None:
    problems: dict[str, list[str]] = {}
    if "parameters_schema" in values:
        schema = values["parameters_schema"]
        if not isinstance(schema, dict) or schema.get("type") != "object":
            problems["parameters_schema"] = ['Must be a JSON Schema with "type": "object".']
        elif found := schema_problems(schema):
            problems["parameters_schema"] = found
    if values.get("returns_schema") is not None and (found := schema_problems(values["returns_schema"])):
        problems["returns_schema"] = found
    if problems:
        raise InvalidInput(validation_errors=problems)


def _check_url(url: str, field: str = "url") -> None:
    """Early feedback on a URL an organization configures; every call checks it again."""
    try:
        check_url(url.replace("{", "").replace("}", ""))
    except UnresolvableHost:
        pass  # DNS may be down now, or the name internal: the call-time check decides
    except ToolError as exc:
        raise InvalidInput(validation_errors={field: [str(exc)]}) from None


def _http_values(data: dict[str, Any], *, current: Tool | None = None) -> dict[str, Any]:
    """Model fields from validated input (partial when ``current`` is given)."""
    values: dict[str, Any] = {}
    for field in (
        "display_name", "description", "category", "parameters_schema", "returns_schema", "requires_permissions",
        "rate_limit_per_minute", "rate_limit_per_hour", "timeout_seconds", "is_dangerous", "is_idempotent", "is_active",
        "untrusted_output",
    ):  # fmt: skip
        if field in data:
            values[field] = data[field]
    _check_schemas(values)
    unknown = set(values.get("requires_permissions", [])) - set(Capability.values)
    if unknown:
        raise InvalidInput(validation_errors={"requires_permissions": [f"Unknown: {', '.join(sorted(unknown))}."]})
    config = dict(current.handler_config) if current else {}
    for key in ("url", "method", "headers"):
        if key in data:
            config[key] = data[key]
    if "url" in data:
        _check_url(data["url"])
    if any(k.lower() == "host" for k in config.get("headers", {})):
        raise InvalidInput(validation_errors={"headers": ["The Host header cannot be set."]})
    values["handler_config"] = config
    if "secret_headers" in data:
        values["secret_headers"] = json.dumps(data["secret_headers"]) if data["secret_headers"] else ""
    return values


def http_tool_create(*, actor: Actor, data: dict[str, Any]) -> Tool:
    name = data["name"]
    if not TOOL_NAME.match(name):
        raise InvalidInput(
            validation_errors={"name": ["Lowercase letters, digits and _, 2 to 64, starting with a letter."]}
        )
    if name.startswith("mcp__"):
        raise InvalidInput(validation_errors={"name": ["Names starting with mcp__ are MCP servers' tools."]})
    if name in BUILTIN_NAMES or Tool.objects.filter(organization__isnull=True, name=name).exists():
        raise ApiError(code="Conflict", message=f"{name!r} is a built-in tool's name.", details={"name": name})
    values = _http_values(data)
    values.setdefault("display_name", name.replace("_", " ").title())
    values.setdefault("category", "custom")
    values.setdefault("requires_permissions", [Capability.ACCESS_EXTERNAL_APIS.value])
    # An organization's HTTP tool answers with whatever its service returns: untrusted
    # unless the organization says the service is its own (untrusted_output: false).
    values.setdefault("untrusted_output", True)
    values["handler_config"].setdefault("method", "POST")
    try:
        with transaction.atomic():
            tool = Tool.objects.create(
                organization=actor.organization,
                name=name,
                handler_type=HandlerType.HTTP,
                is_system=False,
                created_by=actor.user,  # type: ignore[misc]
                **values,
            )
            activity_record(
                organization=actor.organization,
                actor=actor,
                action="tool.create",
                target=tool,
                request_summary={"name": name},
            )
    except IntegrityError:
        raise ApiError(code="Conflict", message=f"The organization already has a tool {name!r}.") from None
    return tool


def _refuse_mcp(tool: Tool) -> None:
    if tool.mcp_server_id is not None:
        raise ApiError(
            code="Conflict",
            message=f"{tool.name!r} comes from an MCP server: change the server (mcp-servers/), or deny the tool "
            "in the agent's denied_tools.",
            details={"tool": tool.name, "mcp_server": str(tool.mcp_server_id)},
        )


def http_tool_update(*, actor: Actor, tool: Tool, data: dict[str, Any]) -> Tool:
    _refuse_mcp(tool)
    values = _http_values(data, current=tool)
    with transaction.atomic():
        for field, value in values.items():
            setattr(tool, field, value)
        tool.save(update_fields=[*values, "updated_at"])
        activity_record(
            organization=actor.organization,
            actor=actor,
            action="tool.update",
            target=tool,
            request_summary={"fields": sorted(k for k in data if k != "secret_headers")},
        )
    return tool


def http_tool_delete(*, actor: Actor, tool: Tool) -> None:
    _refuse_mcp(tool)
    with transaction.atomic():
        activity_record(
            organization=actor.organization,
            actor=actor,
            action="tool.delete",
            target=tool,
            request_summary={"name": tool.name},
        )
        tool.delete()


# --- Capability grants and module endpoints ----------------------------------------------


def capabilities_set(*, actor: Actor, agent: Any, capabilities: list[str]) -> AgentCapabilityGrant:
    unknown = set(capabilities) - set(Capability.values)
    if unknown:
        raise InvalidInput(validation_errors={"capabilities": [f"Unknown: {', '.join(sorted(unknown))}."]})
    ordered = [c for c in Capability.values if c in set(capabilities)]
    with transaction.atomic():
        grant, _ = AgentCapabilityGrant.objects.select_for_update().get_or_create(
            organization=actor.organization, agent=agent
        )
        before = list(grant.capabilities)
        grant.capabilities = ordered
        grant.updated_by = actor.user  # type: ignore[assignment]
        grant.save(update_fields=["capabilities", "updated_by", "updated_at"])
        activity_record(
            organization=actor.organization,
            actor=actor,
            action="agent.capabilities",
            target=grant,
            agent_id=agent.pk,
            request_summary={"before": before, "after": ordered},
        )
    return grant


def module_endpoint_save(
    *, actor: Actor, data: dict[str, Any], endpoint: ModuleEndpoint | None = None
) -> ModuleEndpoint:
    if "base_url" in data:
        _check_url(data["base_url"], "base_url")
    try:
        with transaction.atomic():
            if endpoint is None:
                endpoint = ModuleEndpoint(organization=actor.organization)
            for field in ("module", "base_url", "auth_header", "secret", "config", "is_active"):
                if field in data:
                    setattr(endpoint, field, data[field])
            endpoint.save()
            activity_record(
                organization=actor.organization,
                actor=actor,
                action="module_endpoint.save",
                target=endpoint,
                request_summary={"module": endpoint.module, "fields": sorted(k for k in data if k != "secret")},
            )
    except IntegrityError:
        raise ApiError(code="Conflict", message="This module already has an endpoint.") from None
    return endpoint


def module_endpoint_delete(*, actor: Actor, endpoint: ModuleEndpoint) -> None:
    with transaction.atomic():
        activity_record(organization=actor.organization, actor=actor, action="module_endpoint.delete", target=endpoint)
        endpoint.delete()


# --- The call log ---------------------------------------------------------------------

# One statement per call: insert the row, or (for a call held for approval, whose row is
# already there) update it, and hand back the status the row had before. The CTE reads the
# old row from the statement's snapshot, before the upsert changes it.
_UPSERT_CALL = """
WITH old AS (SELECT status, output_result FROM tools_toolcall WHERE idempotency_key = %(key)s)
INSERT INTO tools_toolcall (
    id, organization_id, agent_id, tool_id, tool_name, execution_id, step_number, idempotency_key,
    input_params, output_result, status, error_message, started_at, completed_at, duration_ms, tokens_used
) VALUES (
    %(id)s, %(organization_id)s, %(agent_id)s, %(tool_id)s, %(tool_name)s, %(execution_id)s, %(step_number)s,
    %(key)s, %(input_params)s::jsonb, %(output_result)s::jsonb, %(status)s, %(error_message)s, %(started_at)s,
    %(completed_at)s, %(duration_ms)s, 0
)
ON CONFLICT (idempotency_key) DO UPDATE SET
    tool_id = EXCLUDED.tool_id, input_params = EXCLUDED.input_params, output_result = EXCLUDED.output_result,
    status = EXCLUDED.status, error_message = EXCLUDED.error_message, completed_at = EXCLUDED.completed_at,
    duration_ms = EXCLUDED.duration_ms
RETURNING (SELECT status FROM old), (SELECT output_result FROM old)
"""


def tool_call_log(
    *,
    context: Any,
    tool_id: Any,
    name: str,
    arguments: Any,
    status: str,
    error: str = "",
    output: Any = None,
    started_at: Any = None,
) -> tuple[str | None, Any]:
    """Log one call (made, refused or held) in one statement.

    Returns the status and output the row had before (a held call's row is there already),
    or (None, None) for a new row.
    """
    execution = context.execution
    now = timezone.now()
    started_at = started_at or now
    done = status != ToolCallStatus.PENDING
    params = {
        "id": uuid.uuid4(),
        "organization_id": execution.organization_id,
        "agent_id": execution.agent_id,
        "tool_id": tool_id,
        "tool_name": name[:120],
        "execution_id": execution.pk,
        "step_number": context.step_number,
        "key": context.idempotency_key,
        "input_params": json.dumps(arguments, cls=DjangoJSONEncoder),
        "output_result": json.dumps(output, cls=DjangoJSONEncoder),
        "status": status,
        "error_message": error[:2000],
        "started_at": started_at,
        "completed_at": now if done else None,
        "duration_ms": int((now - started_at).total_seconds() * 1000) if done else None,
    }
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT_CALL, params)
        previous_status, previous_output = cursor.fetchone()
    if isinstance(previous_output, str):
        previous_output = json.loads(previous_output)
    return previous_status, previous_output


def tool_call_mark_held(*, execution_id: Any, step_number: int, params: Any, edited: bool) -> int:
    """An approved call: the arguments it will run with, and whether a person changed them."""
    return ToolCall.objects.filter(
        execution_id=execution_id, step_number=step_number, status=ToolCallStatus.PENDING
    ).update(input_params=params, output_result={"approved": True, "params_edited": edited})


def tool_call_deny_held(*, execution_id: Any, step_number: int, reason: str) -> int:
    """A held call a person denied (or that expired): close its log row."""
    return ToolCall.objects.filter(
        execution_id=execution_id, step_number=step_number, status=ToolCallStatus.PENDING
    ).update(status=ToolCallStatus.DENIED, error_message=reason[:2000], completed_at=timezone.now())


# --- Rows the built-in tools write ------------------------------------------------------

M = TypeVar("M", bound=models.Model)


def _create_once(model: type[M], idempotency_key: str | None, values: dict[str, Any]) -> M:
    """A new row, or with an idempotency key the row that key already made (a tool call
    re-run after a worker died must not write it twice)."""
    if idempotency_key:
        row, _ = model._default_manager.get_or_create(idempotency_key=idempotency_key, defaults=values)
        return row
    return model._default_manager.create(**values)


def task_create(
    *,
    organization_id: Any,
    title: str,
    description: str = "",
    priority: str = "medium",
    due_date: Any = None,
    assigned_to: Any = None,
    agent_id: Any = None,
    execution_id: Any = None,
    idempotency_key: str | None = None,
) -> Task:
    defaults = {
        "organization_id": organization_id,
        "title": title[:300],
        "description": description,
        "priority": priority,
        "due_date": due_date,
        "assigned_to": assigned_to,
        "agent_id": agent_id,
        "execution_id": execution_id,
    }
    return _create_once(Task, idempotency_key, defaults)


def email_draft_create(
    *,
    organization_id: Any,
    to: list[str],
    subject: str,
    body: str,
    agent_id: Any = None,
    execution_id: Any = None,
    idempotency_key: str | None = None,
) -> EmailDraft:
    defaults = {
        "organization_id": organization_id,
        "to": to,
        "subject": subject[:500],
        "body": body,
        "agent_id": agent_id,
        "execution_id": execution_id,
    }
    return _create_once(EmailDraft, idempotency_key, defaults)


def notification_create(
    *,
    organization_id: Any,
    user: Any,
    message: str,
    channel: str = "in_app",
    recipient: str = "",
    title: str = "",
    link: str = "",
    agent_id: Any = None,
    execution_id: Any = None,
) -> Notification:
    return Notification.objects.create(
        organization_id=organization_id,
        user=user,
        channel=channel,
        recipient=recipient,
        title=title[:200],
        message=message,
        link=link[:500],
        agent_id=agent_id,
        execution_id=execution_id,
    )


def notification_mark_read(*, actor: Actor, notification: Notification) -> Notification:
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


# --- Email templates ------------------------------------------------------------------


def email_template_save(*, actor: Actor, data: dict[str, Any], template: EmailTemplate | None = None) -> EmailTemplate:
    """Create or change one of the organization's email templates; a subject or body that
    does not compile (or nests loops) is refused with the reason, and nothing is saved."""
    subject = data.get("subject", template.subject if template else "")
    body = data.get("body", template.body if template else "")
    problems = template_problems(subject=subject, body=body)
    if problems:
        raise InvalidInput(validation_errors=problems)
    try:
        with transaction.atomic():
            if template is None:
                template = EmailTemplate(organization=actor.organization, created_by=actor.user)  # type: ignore[misc]
            for field in ("name", "description", "subject", "body"):
                if field in data:
                    setattr(template, field, data[field])
            template.save()
            activity_record(
                organization=actor.organization,
                actor=actor,
                action="email_template.save",
                target=template,
                request_summary={"name": template.name, "fields": sorted(data)},
            )
    except IntegrityError:
        raise ApiError(code="Conflict", message=f"An email template named {data.get('name')!r} exists.") from None
    return template


def email_template_delete(*, actor: Actor, template: EmailTemplate) -> None:
    with transaction.atomic():
        activity_record(organization=actor.organization, actor=actor, action="email_template.delete", target=template)
        template.delete()
