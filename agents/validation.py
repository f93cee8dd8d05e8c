"""Validation of a whole agent configuration (the API shape of agents.config).

``agent_config_validate`` returns a normalised copy or raises InvalidAgentConfig with every
problem found, keyed by field path, so a client fixes everything in one round trip. It runs
on the merged result of an edit, never on the fragment, so nothing half-valid is saved.
"""

from __future__ import annotations

import fnmatch
import re
import zoneinfo
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from croniter import croniter
from django.conf import settings
from django.utils.dateparse import parse_datetime
from jsonschema import Draft202012Validator, SchemaError
from jsonschema.validators import validator_for

from agents.models import AgentType, GoalComparison, GoalWindow, Visibility
from config.api.errors import ApiError
from executions.llm.catalog import MODELS, PROVIDERS, is_known_model

MAX_FALLBACKS = 5
MAX_LIST_ITEMS = 200
LIMIT_RANGES = {
    "max_steps_per_run": (1, 200),
    "max_tool_calls_per_step": (1, 50),
    # The Celery visibility timeout is derived from EXECUTION_MAX_SECONDS: no run may outlive it.
    "timeout_seconds": (1, None),
    "max_runs_per_hour": (1, 1_000_000),
    "max_runs_per_day": (1, 10_000_000),
}
MAX_TOKENS_RANGE = (1, 1_000_000)

# Provider-specific parameters an agent may pass through, each checked by a small schema.
EXTRA_PARAMETERS: dict[str, dict[str, Any]] = {
    "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
    "stop_sequences": {"type": "array", "items": {"type": "string"}, "maxItems": 16},
    "response_format": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["text", "json_object", "json_schema"]}},
    },
    "seed": {"type": "integer"},
    "top_k": {"type": "integer", "minimum": 1},
    "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "logit_bias": {"type": "object", "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100}},
    "parallel_tool_calls": {"type": "boolean"},
    "reasoning_effort": {"enum": ["low", "medium", "high"]},
    "user": {"type": "string", "maxLength": 256},
    "repetition_penalty": {"type": "number", "exclusiveMinimum": 0},
    "min_p": {"type": "number", "minimum": 0, "maximum": 1},
    "thinking": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["enabled", "disabled"]}, "budget_tokens": {"type": "integer", "minimum": 1}},
    },
}
_OPENAI_EXTRAS = frozenset(
    {
        "stop",
        "response_format",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "parallel_tool_calls",
        "reasoning_effort",
        "user",
    }
)
PROVIDER_EXTRAS: dict[str, frozenset[str]] = {
    "openai": _OPENAI_EXTRAS,
    # Servers such as vLLM and Ollama accept sampling knobs OpenAI does not.
    "openai_compatible": _OPENAI_EXTRAS | {"top_k", "repetition_penalty", "min_p"},
    "anthropic": frozenset({"stop_sequences", "top_k", "thinking"}),
    "groq": frozenset(
        {"stop", "response_format", "seed", "presence_penalty", "frequency_penalty", "parallel_tool_calls"}
    ),
    "sandbox": frozenset({"seed", "stop"}),
}

TOOL_PATTERN = re.compile(r"^[A-Za-z0-9_.\-*]{1,120}$")
EVENT_PATTERN = re.compile(r"^(\*|[a-z0-9_\-]+|\*\*)(\.(\*|[a-z0-9_\-]+))*$")
PERSONALITY_KEYS = frozenset({"traits", "tone", "behavior", "language_style", "description"})
GOAL_KEYS = frozenset(
    {"name", "description", "metric", "target", "comparison", "priority", "window", "is_recurring", "deadline"}
)


class _Errors:
    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.by_field)


def invalid_config(errors: dict[str, list[str]], message: str = "The agent configuration is invalid.") -> ApiError:
    return ApiError(code="InvalidAgentConfig", message=message, details={"validation_errors": errors})


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _int_in(value: Any, low: int, high: int | None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _str_list(config: dict, key: str, errors: _Errors, *, pattern: re.Pattern | None = None, what: str = "") -> None:
    value = config.get(key)
    if not isinstance(value, list) or not _is_str_list(value):
        errors.add(key, "Must be a list of strings.")
        return
    if len(value) > MAX_LIST_ITEMS:
        errors.add(key, f"At most {MAX_LIST_ITEMS} entries.")
    cleaned = []
    for index, item in enumerate(value):
        item = item.strip()
        if not item:
            errors.add(f"{key}.{index}", "Must not be empty.")
        elif pattern is not None and not pattern.match(item):
            errors.add(f"{key}.{index}", f"{item!r} is not a valid {what or 'entry'}.")
        elif item not in cleaned:
            cleaned.append(item)
    config[key] = cleaned


def _validate_model(config: dict, errors: _Errors) -> None:
    mc = config.get("model_config")
    if not isinstance(mc, dict):
        errors.add("model_config", "Must be an object.")
        return
    unknown = set(mc) - {"provider", "model", "temperature", "max_tokens", "top_p", "fallbacks", "extra"}
    for key in sorted(unknown):
        errors.add(f"model_config.{key}", "Unknown field; provider-specific parameters go in model_config.extra.")
    provider, model = mc.get("provider"), mc.get("model")
    if provider not in PROVIDERS:
        errors.add("model_config.provider", f"Unknown provider {provider!r}; use one of {list(PROVIDERS)}.")
    elif not isinstance(model, str) or not is_known_model(provider, model):
        known = sorted(MODELS.get(provider, {}))
        errors.add("model_config.model", f"Unknown model {model!r} for provider {provider!r}; known: {known}.")

    temperature = _decimal(mc.get("temperature"))
    if temperature is None or not Decimal("0") <= temperature <= Decimal("2"):
        errors.add("model_config.temperature", "Must be a number from 0 to 2.")
    else:
        mc["temperature"] = float(temperature.quantize(Decimal("0.01")))
    if not _int_in(mc.get("max_tokens"), *MAX_TOKENS_RANGE):
        errors.add(
            "model_config.max_tokens", f"Must be a whole number from {MAX_TOKENS_RANGE[0]} to {MAX_TOKENS_RANGE[1]}."
        )
    if mc.get("top_p") is not None:
        top_p = _decimal(mc["top_p"])
        if top_p is None or not Decimal("0") < top_p <= Decimal("1"):
            errors.add("model_config.top_p", "Must be a number greater than 0 and at most 1, or null.")
        else:
            mc["top_p"] = float(top_p.quantize(Decimal("0.01")))

    fallbacks = mc.get("fallbacks")
    if not isinstance(fallbacks, list):
        errors.add("model_config.fallbacks", "Must be an ordered list of {provider, model}.")
    else:
        if len(fallbacks) > MAX_FALLBACKS:
            errors.add("model_config.fallbacks", f"At most {MAX_FALLBACKS} fallbacks.")
        seen = {(provider, model)}
        for index, item in enumerate(fallbacks):
            path = f"model_config.fallbacks.{index}"
            if not isinstance(item, dict) or set(item) != {"provider", "model"}:
                errors.add(path, "Must be an object with exactly provider and model.")
                continue
            if item["provider"] not in PROVIDERS:
                errors.add(f"{path}.provider", f"Unknown provider {item['provider']!r}.")
            elif not isinstance(item["model"], str) or not is_known_model(item["provider"], item["model"]):
                errors.add(f"{path}.model", f"Unknown model {item['model']!r} for provider {item['provider']!r}.")
            pair = (item["provider"], item["model"])
            if pair in seen:
                errors.add(path, "Repeats the primary model or an earlier fallback.")
            seen.add(pair)

    extra = mc.get("extra")
    if not isinstance(extra, dict):
        errors.add("model_config.extra", "Must be an object.")
    elif provider in PROVIDERS:
        allowed = PROVIDER_EXTRAS.get(provider, frozenset())
        for key, value in extra.items():
            path = f"model_config.extra.{key}"
            if key not in allowed:
                errors.add(path, f"Not a parameter Agentry passes to {provider}; allowed: {sorted(allowed)}.")
                continue
            problems = sorted(Draft202012Validator(EXTRA_PARAMETERS[key]).iter_errors(value), key=str)
            if problems:
                errors.add(path, problems[0].message)


def _validate_limits(config: dict, errors: _Errors) -> None:
    limits = config.get("limits")
    if not isinstance(limits, dict):
        errors.add("limits", "Must be an object.")
        return
    for key in sorted(set(limits) - set(LIMIT_RANGES)):
        errors.add(f"limits.{key}", "Unknown limit.")
    for key, (low, high) in LIMIT_RANGES.items():
        if key == "timeout_seconds":
            high = settings.EXECUTION_MAX_SECONDS
        if not _int_in(limits.get(key), low, high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            errors.add(f"limits.{key}", f"Must be a whole number {bound}.")


def _validate_personality(config: dict, errors: _Errors) -> None:
    value = config.get("personality")
    if value is None:
        config["personality"] = ""
    elif isinstance(value, str):
        config["personality"] = value.strip()
    elif isinstance(value, dict):
        for key in sorted(set(value) - PERSONALITY_KEYS):
            errors.add(f"personality.{key}", f"Unknown key; use {sorted(PERSONALITY_KEYS)}.")
        if "traits" in value and not _is_str_list(value["traits"]):
            errors.add("personality.traits", "Must be a list of strings.")
        if "behavior" in value and not (isinstance(value["behavior"], str) or _is_str_list(value["behavior"])):
            errors.add("personality.behavior", "Must be a string or a list of strings.")
        for key in ("tone", "language_style", "description"):
            if key in value and not isinstance(value[key], str):
                errors.add(f"personality.{key}", "Must be a string.")
    else:
        errors.add("personality", "Must be text or an object with traits, tone, behavior, language_style.")


def _validate_goals(config: dict, errors: _Errors) -> None:
    goals = config.get("goals")
    if not isinstance(goals, list):
        errors.add("goals", "Must be a list.")
        return
    normalised, names = [], set()
    for index, goal in enumerate(goals):
        path = f"goals.{index}"
        if isinstance(goal, str):
            goal = {"name": goal}
        if not isinstance(goal, dict):
            errors.add(path, "Must be a name or an object.")
            continue
        for key in sorted(set(goal) - GOAL_KEYS):
            errors.add(f"{path}.{key}", f"Unknown key; use {sorted(GOAL_KEYS)}.")
        name = goal.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            errors.add(f"{path}.name", "A name of 1 to 200 characters is required.")
            continue
        name = name.strip()
        if name.lower() in names:
            errors.add(f"{path}.name", f"Goal {name!r} appears twice.")
        names.add(name.lower())
        clean: dict[str, Any] = {
            "name": name,
            "description": goal.get("description") or "",
            "metric": goal.get("metric") or "",
            "target": goal.get("target"),
            "comparison": goal.get("comparison") or GoalComparison.GTE.value,
            "priority": goal.get("priority", 5),
            "window": goal.get("window") or GoalWindow.ALL_TIME.value,
            "is_recurring": goal.get("is_recurring", True),
            "deadline": goal.get("deadline"),
        }
        if not isinstance(clean["description"], str):
            errors.add(f"{path}.description", "Must be a string.")
        if not isinstance(clean["metric"], str) or len(clean["metric"]) > 80:
            errors.add(f"{path}.metric", "Must be a metric name of at most 80 characters.")
        if clean["target"] is not None:
            target = _decimal(clean["target"])
            if target is None or abs(target) >= Decimal("1e14"):
                errors.add(f"{path}.target", "Must be a number.")
        if clean["comparison"] not in GoalComparison.values:
            errors.add(f"{path}.comparison", f"Must be one of {GoalComparison.values}.")
        if not _int_in(clean["priority"], 1, 10):
            errors.add(f"{path}.priority", "Must be a whole number from 1 to 10.")
        if clean["window"] not in GoalWindow.values:
            errors.add(f"{path}.window", f"Must be one of {GoalWindow.values}.")
        if not isinstance(clean["is_recurring"], bool):
            errors.add(f"{path}.is_recurring", "Must be true or false.")
        if clean["deadline"] is not None:
            deadline = parse_datetime(clean["deadline"]) if isinstance(clean["deadline"], str) else None
            if deadline is None or deadline.tzinfo is None:
                errors.add(f"{path}.deadline", "Must be an ISO 8601 date-time with a timezone.")
            else:
                clean["deadline"] = deadline.isoformat()
        normalised.append(clean)
    config["goals"] = normalised


def _validate_constraints(config: dict, errors: _Errors) -> None:
    constraints = config.get("constraints")
    if not isinstance(constraints, list):
        errors.add("constraints", "Must be a list.")
        return
    for index, item in enumerate(constraints):
        path = f"constraints.{index}"
        if isinstance(item, str):
            if not item.strip():
                errors.add(path, "Must not be empty.")
            continue
        # {"text": "...", "requires_approval_for": ["email_send"]}: a rule the approval
        # policy reads as well as the model.
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
            errors.add(path, "Must be text or an object with a text.")
            continue
        for key in sorted(set(item) - {"text", "requires_approval_for"}):
            errors.add(f"{path}.{key}", "Unknown key; use text, requires_approval_for.")
        patterns = item.get("requires_approval_for", [])
        if not _is_str_list(patterns) or not all(TOOL_PATTERN.match(p) for p in patterns):
            errors.add(f"{path}.requires_approval_for", "Must be a list of tool names or patterns.")


def _validate_examples(config: dict, errors: _Errors) -> None:
    examples = config.get("examples")
    if not isinstance(examples, list):
        errors.add("examples", "Must be a list of {input, output}.")
        return
    for index, item in enumerate(examples):
        if (
            not isinstance(item, dict)
            or set(item) != {"input", "output"}
            or not all(isinstance(item[k], str) and item[k].strip() for k in ("input", "output"))
        ):
            errors.add(f"examples.{index}", "Must be an object with a non-empty input and output (strings).")


def _validate_triggers(config: dict, errors: _Errors) -> None:
    _str_list(config, "trigger_events", errors, pattern=EVENT_PATTERN, what="event pattern (such as crm.contact.*)")
    schedule = config.get("trigger_schedule")
    if schedule is None:
        config["trigger_schedule"] = ""
    elif not isinstance(schedule, str):
        errors.add("trigger_schedule", "Must be a cron expression or empty.")
    elif schedule.strip():
        schedule = " ".join(schedule.split())
        # Five fields, as django-celery-beat's crontab takes them (no seconds, no year).
        if len(schedule.split(" ")) != 5 or not croniter.is_valid(schedule):
            errors.add("trigger_schedule", f"{schedule!r} is not a valid 5-field cron expression.")
        config["trigger_schedule"] = schedule
    else:
        config["trigger_schedule"] = ""
    timezone_name = config.get("trigger_timezone")
    if not isinstance(timezone_name, str) or timezone_name not in _timezones():
        errors.add("trigger_timezone", f"Unknown timezone {timezone_name!r}; use an IANA name such as Europe/Paris.")
    if not isinstance(config.get("trigger_conditions"), dict):
        errors.add("trigger_conditions", "Must be an object.")


def _validate_schema(config: dict, key: str, errors: _Errors) -> None:
    schema = config.get(key)
    if schema is None:
        return
    if not isinstance(schema, dict):
        errors.add(key, "Must be a JSON Schema object or null.")
        return
    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        errors.add(key, f"Not a valid JSON Schema: {exc.message}" + (f" (at {where})" if where else ""))


def agent_config_validate(config: dict[str, Any]) -> dict[str, Any]:
    """Check a whole configuration; returns it normalised or raises InvalidAgentConfig."""
    errors = _Errors()
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
    _str_list(config, "capabilities", errors)
    _str_list(config, "allowed_tools", errors, pattern=TOOL_PATTERN, what="tool name or pattern")
    _str_list(config, "denied_tools", errors, pattern=TOOL_PATTERN, what="tool name or pattern")

    _validate_personality(config, errors)
    _validate_goals(config, errors)
    _validate_constraints(config, errors)
    _validate_examples(config, errors)
    _validate_model(config, errors)
    _validate_limits(config, errors)
    _validate_triggers(config, errors)
    _validate_schema(config, "input_schema", errors)
    _validate_schema(config, "output_schema", errors)
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
