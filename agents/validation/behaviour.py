"""Behaviour fields: personality, goals, constraints, examples, triggers, JSON Schemas."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_datetime

from agents.models import GoalComparison, GoalWindow
from agents.tooling import capability_grant_names
from agents.triggers.conditions import trigger_conditions_problems
from agents.triggers.cron import cron_normalise, cron_problem, timezones
from agents.triggers.patterns import pattern_problem
from agents.validation.base import (
    TOOL_PATTERN,
    Errors,
    as_decimal,
    int_in,
    is_str_list,
    str_list,
)
from agents.vocabulary import CAPABILITY_TAGS, PERSONALITY_ENUMS
from config.json_schema import schema_problems

PERSONALITY_KEYS = frozenset({"traits", "tone", "behavior", "language_style", "description"})
GOAL_KEYS = frozenset(
    {"name", "description", "metric", "target", "comparison", "priority", "window", "is_recurring", "deadline"}
)


def _personality_of(config: dict | None) -> dict:
    value = (config or {}).get("personality")
    return value if isinstance(value, dict) else {}


def validate_personality(config: dict, errors: Errors, previous: dict | None = None) -> None:
    value = config.get("personality")
    if value is None:
        config["personality"] = ""
    elif isinstance(value, str):
        config["personality"] = value.strip()
    elif isinstance(value, dict):
        for key in sorted(set(value) - PERSONALITY_KEYS):
            errors.add(f"personality.{key}", f"Unknown key; use {sorted(PERSONALITY_KEYS)}.")
        if "traits" in value and not is_str_list(value["traits"]):
            errors.add("personality.traits", "Must be a list of strings.")
        if "behavior" in value and not (isinstance(value["behavior"], str) or is_str_list(value["behavior"])):
            errors.add("personality.behavior", "Must be a string or a list of strings.")
        for key in ("tone", "language_style", "description"):
            if key in value and not isinstance(value[key], str):
                errors.add(f"personality.{key}", "Must be a string.")
        _personality_enums(value, _personality_of(previous), errors)
    else:
        errors.add("personality", "Must be text or an object with traits, tone, behavior, language_style.")


def _personality_enums(value: dict, before: dict, errors: Errors) -> None:
    """tone, behavior (one or a list) and language_style take the reference's values; a value
    the stored configuration already had is left alone (validated on write, not on read)."""
    for key, allowed in PERSONALITY_ENUMS.items():
        if key not in value or value[key] == before.get(key):
            continue
        items = value[key] if isinstance(value[key], list) else [value[key]]
        wrong = [item for item in items if isinstance(item, str) and item not in allowed]
        if wrong:
            errors.add(
                f"personality.{key}", f"{', '.join(map(repr, wrong))} is not allowed; use one of {list(allowed)}."
            )


def validate_capability_tags(config: dict, errors: Errors, previous: dict | None = None) -> None:
    """Descriptive tags from the documented list (agents.vocabulary). A tool capability's
    name is accepted too, and the agent's warnings say it grants nothing (agents.tooling)."""
    tags = config.get("capabilities")
    if not isinstance(tags, list) or not is_str_list(tags):
        return  # str_list has said so
    stored = set((previous or {}).get("capabilities") or [])
    allowed = set(CAPABILITY_TAGS) | capability_grant_names()
    for index, tag in enumerate(tags):
        if tag not in allowed and tag not in stored:
            errors.add(
                f"capabilities.{index}",
                f"{tag!r} is not a known capability; use one of {sorted(CAPABILITY_TAGS)} "
                "(GET /api/v1/agents/vocabulary/ describes each).",
            )


def validate_goals(config: dict, errors: Errors) -> None:
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
            target = as_decimal(clean["target"])
            if target is None or abs(target) >= Decimal("1e14"):
                errors.add(f"{path}.target", "Must be a number.")
        if clean["comparison"] not in GoalComparison.values:
            errors.add(f"{path}.comparison", f"Must be one of {GoalComparison.values}.")
        if not int_in(clean["priority"], 1, 10):
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


def validate_constraints(config: dict, errors: Errors) -> None:
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
        if not is_str_list(patterns) or not all(TOOL_PATTERN.match(p) for p in patterns):
            errors.add(f"{path}.requires_approval_for", "Must be a list of tool names or patterns.")


def validate_examples(config: dict, errors: Errors) -> None:
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


def validate_triggers(config: dict, errors: Errors) -> None:
    """Cron, timezone, event patterns and conditions, with the same checks the trigger
    services run (executions.triggers): what saves here can be scheduled and can match."""
    raw_events = config.get("trigger_events")
    str_list(config, "trigger_events", errors)
    if isinstance(raw_events, list):
        for index, pattern in enumerate(raw_events):
            if isinstance(pattern, str) and pattern.strip() and (problem := pattern_problem(pattern.strip())):
                errors.add(f"trigger_events.{index}", problem)
    schedule = config.get("trigger_schedule")
    if schedule is None:
        config["trigger_schedule"] = ""
    elif not isinstance(schedule, str):
        errors.add("trigger_schedule", "Must be a cron expression or empty.")
    elif schedule.strip():
        # Five fields, as django-celery-beat's crontab takes them (no seconds, no year).
        problem = cron_problem(schedule)
        if problem:
            errors.add("trigger_schedule", problem)
        config["trigger_schedule"] = cron_normalise(schedule)
    else:
        config["trigger_schedule"] = ""
    timezone_name = config.get("trigger_timezone")
    if not isinstance(timezone_name, str) or timezone_name not in timezones():
        errors.add("trigger_timezone", f"Unknown timezone {timezone_name!r}; use an IANA name such as Europe/Paris.")
    for key, problem in trigger_conditions_problems(config.get("trigger_conditions")).items():
        errors.add(f"trigger_conditions.{key}" if key else "trigger_conditions", problem)


def validate_schema(config: dict, key: str, errors: Errors) -> None:
    schema = config.get(key)
    if schema is None:
        return
    if not isinstance(schema, dict):
        errors.add(key, "Must be a JSON Schema object or null.")
        return
    for problem in schema_problems(schema):
        errors.add(key, problem)
