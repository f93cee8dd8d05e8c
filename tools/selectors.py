"""Reads for tools, scoped to an organization: system tools are everyone's, the rest its own."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.fields import ArrayField
from django.db.models import CharField, Q, QuerySet, Subquery

from accounts.access import Actor
from agents.access import visible_agents_q
from agents.models import Agent
from config.api.errors import NotFound
from config.api.ids import one_or_not_found
from executions.runtime.tools_port import local_tool, tool_allowed
from tools.approval_policy import approval_policy
from tools.builtins.base import ToolDef
from tools.mcp.selectors import platform_servers_shared_with
from tools.models import AgentCapabilityGrant, EmailTemplate, ModuleEndpoint, Notification, Tool, ToolCall


def visible_tools_q(organization_id: Any) -> Q:
    """The platform's active tools (a platform MCP server's only where it is shared) and the
    organization's own. The sharing is an uncorrelated subquery: one query still."""
    platform = Q(organization__isnull=True, is_active=True) & (
        Q(mcp_server__isnull=True) | Q(mcp_server__in=platform_servers_shared_with(organization_id).values("pk"))
    )
    return platform | Q(organization_id=organization_id)


def tool_list(*, actor: Actor) -> QuerySet[Tool]:
    return Tool.objects.filter(visible_tools_q(actor.organization.pk)).order_by("category", "name")


def tool_get(*, actor: Actor, name: str) -> Tool:
    tool = tool_list(actor=actor).filter(name=name).first()
    if tool is None:
        raise NotFound(f"No tool {name!r}.", details={"tool": name})
    return tool


def tool_get_own(*, actor: Actor, name: str) -> Tool:
    """One of the organization's own tools (system tools are not theirs to change)."""
    tool = Tool.objects.filter(organization=actor.organization, name=name).first()
    if tool is None:
        raise NotFound(f"No tool {name!r} of this organization.", details={"tool": name})
    return tool


def tool_names_available(*, organization: Any) -> list[str]:
    """Names of the active tools ``organization`` may use (the agents app validates patterns with it)."""
    organization_id = getattr(organization, "pk", organization)
    return list(
        Tool.objects.filter(visible_tools_q(organization_id), is_active=True)
        .order_by("name")
        .values_list("name", flat=True)
    )


def tool_catalog(*, organization_id: Any) -> dict[str, ToolDef]:
    """Every active tool the organization's runs may call, by name (one query)."""
    return _catalog_from(Tool.objects.filter(visible_tools_q(organization_id), is_active=True))


def tools_with_untrusted_output(*, organization_id: Any, names: Iterable[str]) -> set[str]:
    """Which of ``names``, as the organization's runs resolve them (the platform's tools and
    its own, never another organization's), bring outside content into a run.

    Inactive ones count too: what matters is what a finished run read, not what it may call now.
    """
    wanted = set(names)
    if not wanted:
        return set()
    local = {name for name in wanted if (tool := local_tool(name)) is not None and tool.untrusted_output}
    rows = Tool.objects.filter(
        Q(organization__isnull=True) | Q(organization_id=organization_id), name__in=wanted, untrusted_output=True
    )
    return local | set(rows.values_list("name", flat=True))


def _catalog_from(rows: Any) -> dict[str, ToolDef]:
    catalog: dict[str, ToolDef] = {}
    for row in sorted(rows, key=lambda t: t.organization_id is not None):
        # A system name wins; creating an organization tool with one is refused anyway.
        catalog.setdefault(row.name, ToolDef.from_row(row))
    return catalog


@dataclass(frozen=True)
class ToolView:
    """What one run may use: the catalog, the agent's grants, the organization's modules
    and risk rules."""

    catalog: dict[str, ToolDef]
    capabilities: frozenset[str]
    modules: frozenset[str]
    risk_rules: list[dict[str, Any]]


GRANT_HINT = "grant it with PUT /api/v1/agents/{agent_id}/capabilities/ or in the console (Agent capability grants)"
MODULE_HINT = "configure it with POST /api/v1/module-endpoints/ or in the console (Module endpoints)"


def refusal(tool: ToolDef, capabilities: frozenset[str], modules: frozenset[str]) -> str | None:
    """Why the agent may not use ``tool`` here (None: it may)."""
    missing_modules = [m for m in tool.requires_modules if m not in modules]
    if missing_modules:
        return (
            f"Tool {tool.name!r} needs the {', '.join(missing_modules)} module, "
            "which this organization has not configured."
        )
    missing = [p for p in tool.requires_permissions if p not in capabilities]
    if missing:
        return f"Tool {tool.name!r} requires {', '.join(missing)}, which this agent has not been granted."
    return None


def unoffered_tools(view: ToolView, *, allowed: list[str], denied: list[str], agent_id: Any) -> list[dict[str, Any]]:
    """The tools the agent's patterns allow but that its runs do not offer to the model, each
    with what is missing and where to fix it (a grant or a module): nothing is dropped silently."""
    gaps = []
    for tool in sorted(view.catalog.values(), key=lambda t: t.name):
        if not tool_allowed(tool.name, allowed=allowed, denied=denied):
            continue
        modules = [m for m in tool.requires_modules if m not in view.modules]
        grants = [p for p in tool.requires_permissions if p not in view.capabilities]
        if modules:
            how = MODULE_HINT
            reason = f"{tool.name} needs the {', '.join(modules)} module, which this organization has not configured"
        elif grants:
            plural = "capabilities" if len(grants) > 1 else "capability"
            how = GRANT_HINT.format(agent_id=agent_id)
            reason = f"{tool.name} needs the {', '.join(grants)} {plural}, which this agent is not granted"
        else:
            continue
        gaps.append(
            {
                "tool": tool.name,
                "missing_capabilities": grants,
                "missing_modules": modules,
                "message": f"{reason}; {how}.",
            }
        )
    return gaps


def agent_tool_gaps(*, organization_id: Any, agent_id: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    """``unoffered_tools`` for an agent's configuration in an organization (the agents app's
    warnings read it through agents.tooling)."""
    allowed, denied = config.get("allowed_tools") or [], config.get("denied_tools") or []
    if not allowed:
        return []
    view = tool_view(organization_id=organization_id, agent_id=agent_id)
    return unoffered_tools(view, allowed=allowed, denied=denied, agent_id=agent_id)


def tool_view(*, organization_id: Any, agent_id: Any) -> ToolView:
    """Everything the gateway needs for a run, in one query.

    The grants, modules and rules ride along as uncorrelated subqueries, which PostgreSQL
    evaluates once (an InitPlan), not per tool row.
    """
    grants = AgentCapabilityGrant.objects.filter(organization_id=organization_id, agent_id=agent_id)
    modules = ModuleEndpoint.objects.filter(organization_id=organization_id, is_active=True)
    rows = list(
        Tool.objects.filter(visible_tools_q(organization_id), is_active=True).annotate(
            _granted=Subquery(grants.values("capabilities")[:1], output_field=ArrayField(CharField())),
            _modules=ArraySubquery(modules.values("module")),
            _rules=approval_policy().rules_subquery(organization_id=organization_id),
        )
    )
    capabilities: frozenset[str] | list[str]
    module_names: frozenset[str] | list[str]
    if rows:
        first = rows[0]
        capabilities, module_names, rules = first._granted or [], first._modules or [], first._rules or []
    else:  # no tool rows at all (a registry not synced yet): ask separately
        capabilities = agent_capabilities(organization_id=organization_id, agent_id=agent_id)
        module_names = configured_modules(organization_id=organization_id)
        rules = approval_policy().organization_rules(organization_id)
    return ToolView(
        catalog=_catalog_from(rows),
        capabilities=frozenset(capabilities),
        modules=frozenset(module_names),
        risk_rules=list(rules),
    )


def tool_secret_headers(*, tool_id: Any) -> dict[str, str]:
    raw = Tool.objects.filter(pk=tool_id).values_list("secret_headers", flat=True).first() if tool_id else None
    if not raw:
        return {}
    # values_list applies the field's from_db_value: this is the clear text.
    return dict(json.loads(raw))


def tool_call_list(*, actor: Actor) -> QuerySet[ToolCall]:
    own_agents = Agent.objects.filter(visible_agents_q(actor)).values("pk")
    return (
        ToolCall.objects.filter(organization=actor.organization)
        .filter(Q(agent__in=own_agents) | Q(agent__organization__isnull=True))
        .order_by("-started_at")
    )


def tool_calls_for_execution(*, execution_id: Any) -> QuerySet[ToolCall]:
    return ToolCall.objects.filter(execution_id=execution_id).order_by("step_number", "started_at")


def agent_capabilities(*, organization_id: Any, agent_id: Any) -> frozenset[str]:
    granted = (
        AgentCapabilityGrant.objects.filter(organization_id=organization_id, agent_id=agent_id)
        .values_list("capabilities", flat=True)
        .first()
    )
    return frozenset(granted or ())


def module_endpoint_for(*, organization_id: Any, module: str) -> ModuleEndpoint | None:
    return ModuleEndpoint.objects.filter(organization_id=organization_id, module=module, is_active=True).first()


def configured_modules(*, organization_id: Any) -> frozenset[str]:
    return frozenset(
        ModuleEndpoint.objects.filter(organization_id=organization_id, is_active=True).values_list("module", flat=True)
    )


def module_endpoint_list(*, actor: Actor) -> QuerySet[ModuleEndpoint]:
    return ModuleEndpoint.objects.filter(organization=actor.organization).order_by("module")


def module_endpoint_get(*, actor: Actor, endpoint_id: Any) -> ModuleEndpoint:
    return one_or_not_found(module_endpoint_list(actor=actor), endpoint_id, "Module endpoint not found.")


def notification_list(*, actor: Actor) -> QuerySet[Notification]:
    """The acting person's own notifications in this organization."""
    return Notification.objects.filter(organization=actor.organization, user_id=actor.user_id).order_by("-created_at")


def email_template_list(*, organization_id: Any) -> QuerySet[EmailTemplate]:
    return EmailTemplate.objects.filter(organization_id=organization_id)


def email_template_get(*, organization_id: Any, template_id: Any) -> EmailTemplate:
    """The organization's template; another organization's, or none, is NotFound."""
    return one_or_not_found(
        email_template_list(organization_id=organization_id), template_id, "Email template not found."
    )
