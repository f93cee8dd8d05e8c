"""Validation of ``type_config``: what each agent type adds to the versioned configuration.

See agents/types.py for what each setting does at run time.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from agents.models import Agent, AgentType
from agents.validation.base import Errors, as_decimal, int_in
from config.json_schema import schema_problems

TYPE_KEYS: dict[str, tuple[str, ...]] = {
    AgentType.ASSISTANT: (),
    AgentType.SPECIALIST: (),
    AgentType.ORCHESTRATOR: ("managed_agents", "delegation_rules"),
    AgentType.ANALYST: ("report_templates", "default_report"),
    AgentType.GUARDIAN: ("watched_agents", "monitoring_rules"),
}
MAX_MANAGED = 50
MAX_RULES = 50
MAX_TEMPLATES = 20

DELEGATION_PRIORITIES = ("low", "normal", "high", "critical")
# Guardian metrics, each over the watched agents' runs in the rule's window (approval_backlog:
# runs waiting for an approval at evaluation time; the window only spaces its alerts).
MONITORING_METRICS = ("failure_rate", "cost", "latency_p50", "latency_p95", "approval_backlog", "run_count")
MONITORING_ACTIONS = ("alert", "run")
SEVERITIES = ("low", "medium", "high", "critical")
WINDOW = re.compile(r"^([1-9][0-9]{0,3})([mhd])$")
WINDOW_SECONDS = {"m": 60, "h": 3600, "d": 86400}
MIN_WINDOW, MAX_WINDOW = 60, 7 * 86400
REPORT_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,59}$")
RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")

# The reference's examples of an assistant and a specialist (agents-core-infrastructure.md,
# "Core Agent Types"): applied at creation to the fields the caller did not send, when the
# caller names the type.
TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    AgentType.ASSISTANT: {
        "allowed_tools": ["crm_*", "email_draft", "calendar_*", "task_create", "data_query"],
        "constraints": [
            "Never send emails without user approval",
            "Don't access financial data without explicit permission",
            "Always confirm before deleting any data",
        ],
    },
    AgentType.SPECIALIST: {
        "allowed_tools": [
            "crm_*",
            "email_send",
            "email_draft",
            "calendar_create_event",
            "web_search",
            "data_query",
            "task_create",
        ],
    },
}


def type_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its type's reference defaults for the fields it leaves out."""
    defaults = TYPE_DEFAULTS.get(str(data.get("agent_type")), {}) if "agent_type" in data else {}
    # "tools" is the API's alias of allowed_tools: given, it counts as given.
    given = set(data) | ({"allowed_tools"} if "tools" in data else set())
    return {**{key: list(value) for key, value in defaults.items() if key not in given}, **data}


def window_seconds(window: str) -> int:
    match = WINDOW.match(window)
    assert match is not None
    return int(match.group(1)) * WINDOW_SECONDS[match.group(2)]


def _agent_ids(
    value: Any, path: str, errors: Errors, *, organization_id: Any, agent_id: Any, what: str
) -> list[str] | None:
    """A list of agent ids of the organization (not the agent itself), normalised."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors.add(path, "Must be a list of agent ids.")
        return None
    if len(value) > MAX_MANAGED:
        errors.add(path, f"At most {MAX_MANAGED} agents.")
        return None
    ids: list[str] = []
    for index, item in enumerate(value):
        try:
            ref = str(uuid.UUID(item.strip()))
        except ValueError:
            errors.add(f"{path}.{index}", f"{item!r} is not an agent id.")
            continue
        if agent_id is not None and ref == str(agent_id):
            errors.add(f"{path}.{index}", f"An agent cannot {what} itself.")
        elif ref not in ids:
            ids.append(ref)
    if ids:
        found = set()
        if organization_id is not None:
            found = {
                str(pk)
                for pk in Agent.objects.filter(
                    organization_id=organization_id, pk__in=ids, deleted_at__isnull=True
                ).values_list("pk", flat=True)
            }
        for index, ref in enumerate(ids):
            if ref not in found:
                errors.add(f"{path}.{index}", f"No agent {ref} in this organization.")
    return ids


def _orchestrator(config: dict, errors: Errors, organization_id: Any, agent_id: Any) -> None:
    type_config = config["type_config"]
    managed = _agent_ids(
        type_config.get("managed_agents", []),
        "type_config.managed_agents",
        errors,
        organization_id=organization_id,
        agent_id=agent_id,
        what="manage",
    )
    if managed is not None:
        type_config["managed_agents"] = managed
    rules = type_config.get("delegation_rules", [])
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        errors.add("type_config.delegation_rules", f"Must be a list of at most {MAX_RULES} rules.")
        return
    clean = []
    for index, rule in enumerate(rules):
        path = f"type_config.delegation_rules.{index}"
        if not isinstance(rule, dict):
            errors.add(path, "Must be an object: {condition, agent, priority}.")
            continue
        for key in sorted(set(rule) - {"condition", "agent", "priority"}):
            errors.add(f"{path}.{key}", "Unknown key; use condition, agent, priority.")
        condition = rule.get("condition")
        if not isinstance(condition, str) or not condition.strip() or len(condition) > 500:
            errors.add(f"{path}.condition", "A condition of 1 to 500 characters is required.")
        target = rule.get("agent")
        try:
            target = str(uuid.UUID(str(target)))
        except ValueError:
            errors.add(f"{path}.agent", "Must be the id of one of managed_agents.")
        else:
            if managed is not None and target not in managed:
                errors.add(f"{path}.agent", "Must be one of managed_agents.")
        priority = rule.get("priority", "normal")
        if priority not in DELEGATION_PRIORITIES:
            errors.add(f"{path}.priority", f"Must be one of {list(DELEGATION_PRIORITIES)}.")
        clean.append({"condition": str(condition or "").strip(), "agent": target, "priority": priority})
    type_config["delegation_rules"] = clean


def _analyst(config: dict, errors: Errors) -> None:
    type_config = config["type_config"]
    templates = type_config.get("report_templates", [])
    if not isinstance(templates, list) or len(templates) > MAX_TEMPLATES:
        errors.add("type_config.report_templates", f"Must be a list of at most {MAX_TEMPLATES} templates.")
        return
    clean, names = [], []
    for index, template in enumerate(templates):
        path = f"type_config.report_templates.{index}"
        if not isinstance(template, dict):
            errors.add(path, "Must be an object: {name, description, sections, output_schema}.")
            continue
        for key in sorted(set(template) - {"name", "description", "sections", "output_schema"}):
            errors.add(f"{path}.{key}", "Unknown key; use name, description, sections, output_schema.")
        name = template.get("name")
        if not isinstance(name, str) or not REPORT_NAME.match(name):
            errors.add(f"{path}.name", "A name of lowercase letters, digits, _ or - (at most 60) is required.")
        elif name in names:
            errors.add(f"{path}.name", f"Report {name!r} appears twice.")
        else:
            names.append(name)
        description = template.get("description", "")
        if not isinstance(description, str) or len(description) > 2000:
            errors.add(f"{path}.description", "Must be a string of at most 2000 characters.")
        sections = template.get("sections", [])
        if (
            not isinstance(sections, list)
            or len(sections) > 30
            or not all(isinstance(s, str) and REPORT_NAME.match(s) for s in sections)
            or len(set(sections)) != len(sections)
        ):
            errors.add(f"{path}.sections", "Must be a list of distinct section keys (lowercase, _ or -).")
            sections = []
        schema = template.get("output_schema")
        if schema is not None:
            if not isinstance(schema, dict):
                errors.add(f"{path}.output_schema", "Must be a JSON Schema object or null.")
            else:
                for problem in schema_problems(schema):
                    errors.add(f"{path}.output_schema", problem)
        elif not sections:
            errors.add(path, "Give the report's sections or its output_schema: the answer is checked against it.")
        clean.append({"name": name, "description": description, "sections": sections, "output_schema": schema})
    type_config["report_templates"] = clean
    default = type_config.get("default_report")
    if default is not None and default not in names:
        errors.add("type_config.default_report", f"Must be one of the report templates' names {names}.")
    type_config["default_report"] = default
    if clean and config.get("output_schema") is not None:
        errors.add(
            "output_schema",
            "An analyst with report templates answers in its report's schema: set output_schema on the template.",
        )


def _guardian(config: dict, errors: Errors, organization_id: Any, agent_id: Any) -> None:
    type_config = config["type_config"]
    watched = _agent_ids(
        type_config.get("watched_agents", []),
        "type_config.watched_agents",
        errors,
        organization_id=organization_id,
        agent_id=agent_id,
        what="watch",
    )
    if watched is not None:
        type_config["watched_agents"] = watched
    rules = type_config.get("monitoring_rules", [])
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        errors.add("type_config.monitoring_rules", f"Must be a list of at most {MAX_RULES} rules.")
        return
    keys = {"name", "metric", "threshold", "window", "action", "severity", "min_runs"}
    clean, names = [], []
    for index, rule in enumerate(rules):
        path = f"type_config.monitoring_rules.{index}"
        if not isinstance(rule, dict):
            errors.add(path, "Must be an object: {metric, threshold, window, action}.")
            continue
        for key in sorted(set(rule) - keys):
            errors.add(f"{path}.{key}", f"Unknown key; use {sorted(keys)}.")
        metric = rule.get("metric")
        if metric not in MONITORING_METRICS:
            errors.add(f"{path}.metric", f"Must be one of {list(MONITORING_METRICS)}.")
        name = rule.get("name") or f"{metric}-{index + 1}"
        if not isinstance(name, str) or not RULE_NAME.match(name):
            errors.add(f"{path}.name", "At most 40 letters, digits, _ or -.")
        elif name in names:
            errors.add(f"{path}.name", f"Rule {name!r} appears twice.")
        names.append(name)
        threshold = as_decimal(rule.get("threshold"))
        if threshold is None or threshold < 0 or threshold >= 10**12:
            errors.add(f"{path}.threshold", "Must be a number of at least 0.")
        elif metric == "failure_rate" and threshold > 1:
            errors.add(f"{path}.threshold", "A failure rate is a fraction from 0 to 1.")
        window = rule.get("window")
        if not isinstance(window, str) or not WINDOW.match(window):
            errors.add(f"{path}.window", "Must be a duration such as 5m, 1h or 1d.")
        elif not MIN_WINDOW <= window_seconds(window) <= MAX_WINDOW:
            errors.add(f"{path}.window", "Must be from 1m to 7d.")
        action = rule.get("action", "alert")
        if action not in MONITORING_ACTIONS:
            errors.add(f"{path}.action", f"Must be one of {list(MONITORING_ACTIONS)}.")
        severity = rule.get("severity", "medium")
        if severity not in SEVERITIES:
            errors.add(f"{path}.severity", f"Must be one of {list(SEVERITIES)}.")
        min_runs = rule.get("min_runs", 1)
        if not int_in(min_runs, 1, 100_000):
            errors.add(f"{path}.min_runs", "Must be a whole number from 1 to 100000.")
        clean.append(
            {
                "name": name,
                "metric": metric,
                "threshold": float(threshold) if threshold is not None else None,
                "window": window,
                "action": action,
                "severity": severity,
                "min_runs": min_runs,
            }
        )
    type_config["monitoring_rules"] = clean


def validate_type_config(config: dict, errors: Errors, *, organization_id: Any, agent_id: Any) -> None:
    """``type_config`` against the agent's type; normalised in place."""
    value = config.get("type_config")
    if value is None:
        value = {}
    if not isinstance(value, dict):
        errors.add("type_config", "Must be an object.")
        return
    agent_type = str(config.get("agent_type"))
    allowed = TYPE_KEYS.get(agent_type, ())
    for key in sorted(set(value) - set(allowed)):
        owners = [t for t, keys in TYPE_KEYS.items() if key in keys]
        if owners:
            errors.add(f"type_config.{key}", f"Only {owners[0]} agents have {key}; this agent is {agent_type}.")
        else:
            errors.add(f"type_config.{key}", f"Unknown setting; {agent_type} agents take {list(allowed) or 'none'}.")
    config["type_config"] = value = {key: value[key] for key in allowed if key in value}
    if agent_type == AgentType.ORCHESTRATOR:
        _orchestrator(config, errors, organization_id, agent_id)
    elif agent_type == AgentType.ANALYST:
        _analyst(config, errors)
    elif agent_type == AgentType.GUARDIAN:
        _guardian(config, errors, organization_id, agent_id)
