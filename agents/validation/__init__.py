"""Validation of a whole agent configuration (the API shape of agents.config).

``agent_config_validate`` returns a normalised copy or raises InvalidAgentConfig with every
problem found, keyed by field path, so a client fixes everything in one round trip. It runs
on the merged result of an edit, never on the fragment, so nothing half-valid is saved.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from agents.models import AgentType, Visibility
from agents.validation.agent_types import validate_type_config
from agents.validation.base import TOOL_PATTERN, Errors, invalid_config, str_list
from agents.validation.behaviour import (
    validate_capability_tags,
    validate_constraints,
    validate_examples,
    validate_goals,
    validate_personality,
    validate_schema,
    validate_triggers,
)
from agents.validation.model_config import (
    EXTRA_PARAMETERS,
    PROVIDER_EXTRAS,
    model_warnings,
    validate_limits,
    validate_memory,
    validate_model,
)

__all__ = [
    "EXTRA_PARAMETERS",
    "PROVIDER_EXTRAS",
    "agent_config_validate",
    "deadline_of",
    "invalid_config",
    "model_warnings",
    "tool_is_allowed",
    "tool_pattern_warnings",
]


def agent_config_validate(
    config: dict[str, Any],
    *,
    organization_id: Any = None,
    agent_id: Any = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check a whole configuration; returns it normalised or raises InvalidAgentConfig.

    ``agent_id``: the agent being edited (None on create), which may not manage or watch itself.
    ``previous`` is the configuration the edit starts from: values of the predefined lists
    (capability tags, personality enumerations) are checked only where they differ from it,
    so a row stored before the lists existed can still be edited, published and rolled back.
    """
    errors = Errors()
    config = dict(config)

    name = config.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.add("name", "A name is required.")
    elif len(name.strip()) > 200:
        errors.add("name", "At most 200 characters.")
    else:
        config["name"] = name.strip()
    for key in ("description", "system_prompt", "instructions", "domain", "avatar_url", "slug"):
        if not isinstance(config.get(key), str):
            errors.add(key, "Must be a string.")
    if config.get("agent_type") not in AgentType.values:
        errors.add("agent_type", f"Must be one of {AgentType.values}.")
    if config.get("visibility") not in Visibility.values:
        errors.add("visibility", f"Must be one of {Visibility.values}.")
    if not isinstance(config.get("metadata"), dict):
        errors.add("metadata", "Must be an object.")
    str_list(config, "capabilities", errors)
    validate_capability_tags(config, errors, previous)
    str_list(config, "allowed_tools", errors, pattern=TOOL_PATTERN, what="tool name or pattern")
    str_list(config, "denied_tools", errors, pattern=TOOL_PATTERN, what="tool name or pattern")

    validate_personality(config, errors, previous)
    validate_goals(config, errors)
    validate_constraints(config, errors)
    validate_examples(config, errors)
    validate_model(config, errors, organization_id)
    validate_limits(config, errors)
    validate_triggers(config, errors)
    validate_schema(config, "input_schema", errors)
    validate_schema(config, "output_schema", errors)
    validate_memory(config, errors)
    validate_type_config(config, errors, organization_id=organization_id, agent_id=agent_id)
    if errors:
        raise invalid_config(errors.by_field)
    return config


def tool_pattern_warnings(config: dict[str, Any], available: list[str] | None) -> list[str]:
    """Patterns of allowed_tools / denied_tools that match no tool the organization has.

    A warning, not an error: tools can be added after the agent, and the registry may not
    know a tool yet. ``available`` None means nobody can tell (no warnings).
    """
    if available is None:
        return []
    warnings = []
    for key in ("allowed_tools", "denied_tools"):
        for pattern in config.get(key) or []:
            if not any(fnmatch.fnmatchcase(name, pattern) for name in available):
                warnings.append(f"{key}: {pattern!r} matches no available tool.")
    return warnings


def tool_is_allowed(tool_name: str, *, allowed: list[str], denied: list[str]) -> bool:
    """Denied wins; otherwise the tool must match an allowed name or wildcard."""
    if any(fnmatch.fnmatchcase(tool_name, pattern) for pattern in denied):
        return False
    return any(fnmatch.fnmatchcase(tool_name, pattern) for pattern in allowed)


def deadline_of(goal: dict[str, Any]) -> datetime | None:
    value = goal.get("deadline")
    return parse_datetime(value) if isinstance(value, str) else None
