"""What each agent type adds to an agent's versioned configuration (``type_config``).

The five types of the core reference (DESIGN.md §14) change behaviour, so their settings are
part of the configuration a version freezes, validated like the rest:

- orchestrator: ``managed_agents`` (ids of agents of the same organization) and
  ``delegation_rules``; delegation (the ``trigger_workflow`` tool, and the chains it starts)
  is refused outside the managed agents, and the prompt lists them (executions.workflows).
- analyst: ``report_templates``; the run's report is rendered into the prompt and its schema
  becomes the run's output schema (executions.services.execution_start).
- guardian: ``watched_agents`` and ``monitoring_rules``, evaluated on beat against the
  platform's own run data (executions.guardian).
- assistant, specialist: no extra settings; their reference defaults apply at creation.

A key of another type is refused (an orchestrator's ``managed_agents`` on an analyst means
the caller is mistaken about what the agent does, so saying so beats ignoring it).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from agents.models import Agent, AgentType
from agents.validation.agent_types import TYPE_DEFAULTS, TYPE_KEYS, type_defaults, window_seconds
from config.api.errors import InvalidInput

__all__ = ["TYPE_DEFAULTS", "TYPE_KEYS", "type_defaults", "window_seconds"]

# --- the runtime's view ---------------------------------------------------------------------


def managed_agent_ids(config: dict[str, Any]) -> list[str] | None:
    """The agents an orchestrator may delegate to; None when the agent is no orchestrator
    (its delegation is not restricted by type)."""
    if config.get("agent_type") != AgentType.ORCHESTRATOR:
        return None
    return [str(i) for i in (config.get("type_config") or {}).get("managed_agents") or []]


def delegation_refusal(config: dict[str, Any], target_ids: list[Any], *, what: str) -> str | None:
    """Why an orchestrator may not start ``target_ids`` (None: it may)."""
    managed = managed_agent_ids(config)
    if managed is None:
        return None
    outside = [str(t) for t in target_ids if str(t) not in managed]
    if not outside:
        return None
    allowed = ", ".join(managed) if managed else "none"
    return (
        f"Delegation refused: {what} is not among this orchestrator's managed agents "
        f"(outside: {', '.join(outside)}; managed: {allowed})."
    )


def managed_agents_directory(config: dict[str, Any], organization_id: Any) -> list[dict[str, Any]]:
    """Who an orchestrator may delegate to and what each does, frozen into the run's config."""
    ids = managed_agent_ids(config) or []
    if not ids:
        return []
    rows = {
        str(a.pk): a for a in Agent.objects.filter(organization_id=organization_id, pk__in=ids, deleted_at__isnull=True)
    }
    return [
        {
            "id": ref,
            "name": rows[ref].name,
            "slug": rows[ref].slug,
            "agent_type": rows[ref].agent_type,
            "domain": rows[ref].domain,
            "description": rows[ref].description,
            "capabilities": list(rows[ref].capabilities),
        }
        for ref in ids
        if ref in rows
    ]


def report_output_schema(template: dict[str, Any]) -> dict[str, Any]:
    """A report template's schema: its own, or one object with every section required."""
    if template.get("output_schema"):
        return dict(template["output_schema"])
    sections = template.get("sections") or []
    return {
        "type": "object",
        "properties": {section: {"type": "string", "minLength": 1} for section in sections},
        "required": list(sections),
    }


def report_for_run(config: dict[str, Any], requested: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(the report template this run answers with, a problem with the request)."""
    if config.get("agent_type") != AgentType.ANALYST:
        return None, None
    type_config = config.get("type_config") or {}
    templates = type_config.get("report_templates") or []
    if not templates:
        return None, None if requested is None else "This analyst has no report templates."
    names = [t["name"] for t in templates]
    name = requested if requested is not None else (type_config.get("default_report") or names[0])
    if name not in names:
        return None, f"Unknown report template {name!r}; this analyst has {names}."
    return next(t for t in templates if t["name"] == name), None


def type_run_config(config: dict[str, Any], *, organization_id: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The configuration a run freezes, with what its type needs at run time: an
    orchestrator's directory of managed agents (names and descriptions for its prompt), an
    analyst's report for this run (``context.report_template``, else the default) whose
    schema becomes the run's output schema, so the existing correction path enforces it.

    Raises InvalidInput when the run asks for a report the analyst does not have.
    """
    agent_type = config.get("agent_type")
    if agent_type == AgentType.ORCHESTRATOR:
        type_config = dict(config.get("type_config") or {})
        type_config["managed_agents_directory"] = managed_agents_directory(config, organization_id)
        return {**config, "type_config": type_config}
    if agent_type == AgentType.ANALYST:
        template, problem = report_for_run(config, context.get("report_template"))
        if problem is not None:
            raise InvalidInput(validation_errors={"context.report_template": [problem]})
        if template is not None:
            report = {k: template[k] for k in ("name", "description", "sections")}
            return {**config, "report": report, "output_schema": report_output_schema(template)}
    return config


def type_config_warnings(config: dict[str, Any]) -> list[str]:
    """Non-blocking: a type's settings that leave the agent doing nothing its type is for."""
    agent_type = config.get("agent_type")
    type_config = config.get("type_config") or {}
    warnings = []
    if agent_type == AgentType.ORCHESTRATOR:
        if not type_config.get("managed_agents"):
            warnings.append("type_config.managed_agents: none yet, so this orchestrator may delegate to no agent.")
        elif not any(fnmatch.fnmatchcase("trigger_workflow", p) for p in config.get("allowed_tools") or []):
            warnings.append("allowed_tools: add trigger_workflow, or this orchestrator cannot delegate.")
    if agent_type == AgentType.GUARDIAN and not type_config.get("monitoring_rules"):
        warnings.append("type_config.monitoring_rules: none, so this guardian raises no alerts of its own.")
    return warnings


def type_config_for_copy(config: dict[str, Any], *, same_organization: bool) -> tuple[dict[str, Any], list[str]]:
    """A configuration copied into another organization loses its references to the source
    organization's agents (they are not the copy's to manage or watch); returns what was dropped."""
    if same_organization:
        return config, []
    type_config = dict(config.get("type_config") or {})
    dropped = [key for key in ("managed_agents", "delegation_rules", "watched_agents") if type_config.get(key)]
    for key in dropped:
        type_config[key] = []
    return {**config, "type_config": type_config}, dropped
