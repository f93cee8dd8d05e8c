"""The shape of an agent's configuration, shared by the API, the versions and the runtime.

One dict shape everywhere (the API body): model settings nested under ``model_config``,
execution limits under ``limits``, everything else flat. ``agent_draft_config`` reads it from
an agent row, ``agent_apply_config`` writes it back, ``AgentVersion.config`` stores it.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agents.models import DEFAULT_LIMITS, DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, AgentType, Visibility
from billing.catalog import DEFAULT_MODEL, DEFAULT_PROVIDER

if TYPE_CHECKING:
    from agents.models import Agent, AgentVersion

# model_config key -> Agent column.
MODEL_CONFIG_COLUMNS = {
    "provider": "llm_provider",
    "model": "llm_model",
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "top_p": "top_p",
    "fallbacks": "llm_fallbacks",
    "extra": "llm_extra",
    "connection_id": "llm_connection_id",
}
LIMIT_FIELDS = tuple(DEFAULT_LIMITS)

# Snapshotted on publish; changing them needs a new version to reach the runtime.
VERSIONED_FIELDS = (
    "agent_type",
    "domain",
    "capabilities",
    "personality",
    "system_prompt",
    "instructions",
    "goals",
    "constraints",
    "examples",
    "model_config",
    "limits",
    "allowed_tools",
    "denied_tools",
    "trigger_events",
    "trigger_schedule",
    "trigger_timezone",
    "trigger_conditions",
    "input_schema",
    "output_schema",
    "memory",
    "type_config",
)
# Identity and access: take effect at once, never versioned.
LIVE_FIELDS = ("name", "slug", "description", "avatar_url", "visibility", "metadata")
# A version records the name and description it was published under, for the history.
SNAPSHOT_FIELDS = ("name", "description", *VERSIONED_FIELDS)
WRITABLE_FIELDS = (*LIVE_FIELDS, *VERSIONED_FIELDS)


def default_config() -> dict[str, Any]:
    """A new agent's configuration before the caller's fields are applied."""
    return {
        "name": "",
        "slug": "",
        "description": "",
        "avatar_url": "",
        "visibility": Visibility.ORGANIZATION.value,
        "metadata": {},
        "agent_type": AgentType.ASSISTANT.value,
        "domain": "",
        "capabilities": [],
        "personality": "",
        "system_prompt": "",
        "instructions": "",
        "goals": [],
        "constraints": [],
        "examples": [],
        "model_config": {
            "provider": DEFAULT_PROVIDER,
            "model": DEFAULT_MODEL,
            "temperature": float(DEFAULT_TEMPERATURE),
            "max_tokens": DEFAULT_MAX_TOKENS,
            "top_p": None,
            "fallbacks": [],
            "extra": {},
            "connection_id": None,
        },
        "limits": dict(DEFAULT_LIMITS),
        "allowed_tools": [],
        "denied_tools": [],
        "trigger_events": [],
        "trigger_schedule": "",
        "trigger_timezone": "UTC",
        "trigger_conditions": {},
        "input_schema": None,
        "output_schema": None,
        "memory": {},
        "type_config": {},
    }


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def agent_draft_config(agent: Agent) -> dict[str, Any]:
    """The agent row's (draft) configuration in the API shape, live fields included."""
    return copy.deepcopy(agent_draft_view(agent))


def agent_draft_view(agent: Agent) -> dict[str, Any]:
    """``agent_draft_config`` without the copy: its lists and dicts are the row's own, so
    read it (compare, serialize), never change it."""
    return {
        "name": agent.name,
        "slug": agent.slug,
        "description": agent.description,
        "avatar_url": agent.avatar_url,
        "visibility": agent.visibility,
        "metadata": agent.metadata,
        "agent_type": agent.agent_type,
        "domain": agent.domain,
        "capabilities": list(agent.capabilities),
        "personality": agent.personality,
        "system_prompt": agent.system_prompt,
        "instructions": agent.instructions,
        "goals": agent.goals,
        "constraints": agent.constraints,
        "examples": agent.examples,
        "model_config": {
            "provider": agent.llm_provider,
            "model": agent.llm_model,
            "temperature": _number(agent.temperature),
            "max_tokens": agent.max_tokens,
            "top_p": _number(agent.top_p),
            "fallbacks": agent.llm_fallbacks,
            "extra": agent.llm_extra,
            "connection_id": str(agent.llm_connection_id) if agent.llm_connection_id else None,
        },
        "limits": {name: getattr(agent, name) for name in LIMIT_FIELDS},
        "allowed_tools": list(agent.allowed_tools),
        "denied_tools": list(agent.denied_tools),
        "trigger_events": list(agent.trigger_events),
        "trigger_schedule": agent.trigger_schedule,
        "trigger_timezone": agent.trigger_timezone,
        "trigger_conditions": agent.trigger_conditions,
        "input_schema": agent.input_schema,
        "output_schema": agent.output_schema,
        "memory": agent.memory_config,
        "type_config": agent.type_config,
    }


def snapshot(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a configuration an AgentVersion stores."""
    return {key: copy.deepcopy(config[key]) for key in SNAPSHOT_FIELDS}


def versioned_part(config: dict[str, Any]) -> dict[str, Any]:
    return {key: config.get(key) for key in VERSIONED_FIELDS}


def merge_config(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied; model_config and limits merge key by key (PATCH)."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if key in ("model_config", "limits") and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **copy.deepcopy(value)}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def agent_apply_config(agent: Agent, config: dict[str, Any]) -> list[str]:
    """Write a validated configuration onto the row; returns the columns that changed."""
    values: dict[str, Any] = {key: config[key] for key in WRITABLE_FIELDS if key not in ("model_config", "limits")}
    values["memory_config"] = values.pop("memory")
    for key, column in MODEL_CONFIG_COLUMNS.items():
        values[column] = config["model_config"][key]
    for key in LIMIT_FIELDS:
        values[key] = config["limits"][key]
    for column in ("temperature", "top_p"):
        if values[column] is not None:
            values[column] = Decimal(str(values[column])).quantize(Decimal("0.01"))
    changed = []
    for column, value in values.items():
        if getattr(agent, column) != value:
            setattr(agent, column, value)
            changed.append(column)
    return changed


def agent_version_config(version: AgentVersion) -> dict[str, Any]:
    """Everything the runtime needs from a version, in the API shape.

    Versions published before a field existed get that field's default, so the runtime
    never has to guess.
    """
    return copy.deepcopy(agent_version_view(version))


def agent_version_view(version: AgentVersion) -> dict[str, Any]:
    """``agent_version_config`` without the copy (read it, never change it)."""
    return version_shaped(version.config)


def version_shaped(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored snapshot (a version's ``config``, or a draft snapshotted for a draft run) as
    the runtime reads it: every field present, the unversioned ones left out."""
    config = default_config()
    for key, value in stored.items():
        if key in ("model_config", "limits"):
            config[key].update(value or {})
        elif key not in ("slug", "avatar_url", "visibility", "metadata"):
            config[key] = value
    return config


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """One level of nesting unrolled (``model_config.temperature``) for field-by-field diffs."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("model_config", "limits") and isinstance(value, dict):
            for sub, sub_value in value.items():
                flat[f"{key}.{sub}"] = sub_value
        else:
            flat[key] = value
    return flat


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Field-by-field changes from ``old`` to ``new``: added, removed or changed."""
    a, b = flatten(old), flatten(new)
    changes = []
    for field in sorted(set(a) | set(b)):
        if field not in a:
            changes.append({"field": field, "change": "added", "from": None, "to": b[field]})
        elif field not in b:
            changes.append({"field": field, "change": "removed", "from": a[field], "to": None})
        elif a[field] != b[field]:
            changes.append({"field": field, "change": "changed", "from": a[field], "to": b[field]})
    return changes


# What an organization may change about a platform agent. Instructions are appended to the
# platform's and denied tools added to its list (an organization can narrow, never widen,
# what a platform agent may do); the rest replaces the platform's value.
OVERRIDABLE = (
    "model_config",
    "limits",
    "instructions",
    "denied_tools",
    "trigger_events",
    "trigger_schedule",
    "trigger_timezone",
    "trigger_conditions",
)


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A platform agent's configuration with an organization's overrides applied."""
    result = copy.deepcopy(config)
    for key, value in overrides.items():
        if key in ("model_config", "limits"):
            result[key] = {**result[key], **value}
        elif key == "instructions":
            result[key] = "\n\n".join(part for part in (result.get(key, "").strip(), value.strip()) if part)
        elif key == "denied_tools":
            result[key] = [*result.get(key, []), *(t for t in value if t not in result.get(key, []))]
        else:
            result[key] = copy.deepcopy(value)
    return result
