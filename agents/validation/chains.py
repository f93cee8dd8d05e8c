"""Validation of a chain definition, as a whole, before anything is saved.

A step: ``{"id", "agent_id", "input_mapping", "output_mapping", "condition",
"timeout_seconds", "on_error", "fallback_step"}``.

- ``input_mapping`` builds the step's input: ``task`` and context keys, each a field path
  (``input.topic``, ``vars.summary``, ``steps.research.output.text``), a text template with
  ``{{ path }}`` placeholders, or a literal.
- ``output_mapping`` names chain variables after parts of the step's result
  (``{"summary": "output.text"}``; roots: output, status, error, error_code, tokens, cost,
  execution_id).
- ``condition`` (agents.triggers.conditions) decides whether the step runs.
- ``on_error``: stop, continue or fallback (to ``fallback_step``); the chain's
  ``error_handling`` is the default. A step named as a fallback runs only in place of the
  step that failed; it never runs in the normal sequence.

Refused: agents that do not exist for the organization or cannot run, mappings and
conditions naming a variable or step that is not produced *before* the step (a forward
reference is a cycle in the data flow), fallbacks that form a cycle.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.conf import settings

from agents.access import agent_rights
from agents.models import Agent, AgentStatus, Visibility
from agents.selectors import agent_is_runnable
from agents.triggers.conditions import ConditionError, condition_parse, path_text
from agents.validation.base import Errors, int_in
from config.api.errors import InvalidInput

STEP_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
STEP_KEYS = frozenset(
    {"id", "agent_id", "input_mapping", "output_mapping", "condition", "timeout_seconds", "on_error", "fallback_step"}
)
STRATEGIES = ("stop", "continue", "fallback")
RESULT_ROOTS = ("output", "status", "error", "error_code", "tokens", "cost", "execution_id")
CHAIN_ROOTS = ("input", "vars", "steps")
TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
MAX_STEPS = 50
MAX_RETRIES = 5


def template_paths(text: str) -> list[str]:
    return TEMPLATE.findall(text)


def mapping_kind(value: Any) -> str:
    """How an input-mapping value is read: path, template or literal."""
    if not isinstance(value, str):
        return "literal"
    if "{{" in value:
        return "template"
    try:
        parsed = condition_parse(value)
    except ConditionError:
        return "literal"
    return "path" if parsed.tree[0] == "path" and parsed.tree[1][0] in CHAIN_ROOTS else "literal"


class _Scope:
    """What a step may refer to: chain variables and steps produced before it."""

    def __init__(self, variables: set[str], steps: set[str]):
        self.variables, self.steps = variables, steps

    def problem(self, path: tuple) -> str | None:
        root = path[0]
        if root not in CHAIN_ROOTS:
            return f"{path_text(path)!r}: field paths start with input., vars. or steps."
        if root == "vars" and (len(path) < 2 or path[1] not in self.variables):
            name = path[1] if len(path) > 1 else ""
            return f"{path_text(path)!r}: no earlier step's output_mapping produces {name!r}."
        if root == "steps":
            if len(path) < 2 or path[1] not in self.steps:
                return f"{path_text(path)!r}: refers to a step that has not run before this one."
            if len(path) > 2 and path[2] not in RESULT_ROOTS:
                return f"{path_text(path)!r}: a step's result has {', '.join(RESULT_ROOTS)}."
        return None


def _check_mapping_value(value: Any, scope: _Scope, where: str, errors: Errors) -> None:
    kind = mapping_kind(value)
    texts = [value] if kind == "path" else template_paths(value) if kind == "template" else []
    for text in texts:
        try:
            parsed = condition_parse(text)
        except ConditionError as exc:
            errors.add(where, f"{text!r} is not a field path: {exc}")
            continue
        if parsed.tree[0] != "path":
            errors.add(where, f"{text!r} is not a field path.")
        elif problem := scope.problem(parsed.tree[1]):
            errors.add(where, problem)


def _check_step_shape(step: Any, index: int, errors: Errors, ids: set[str]) -> bool:
    where = f"steps.{index}"
    if not isinstance(step, dict):
        errors.add(where, "Must be an object.")
        return False
    for key in sorted(set(step) - STEP_KEYS):
        errors.add(f"{where}.{key}", f"Unknown key; use {sorted(STEP_KEYS)}.")
    step_id = step.get("id")
    if not isinstance(step_id, str) or not STEP_ID.match(step_id):
        errors.add(f"{where}.id", "An id of lowercase letters, digits and _ (starting with a letter) is required.")
        return False
    if step_id in ids:
        errors.add(f"{where}.id", f"Duplicate step id {step_id!r}.")
    ids.add(step_id)
    for key in ("input_mapping", "output_mapping"):
        if not isinstance(step.setdefault(key, {}), dict):
            errors.add(f"{where}.{key}", "Must be an object.")
            step[key] = {}
    for key in step["input_mapping"]:
        if not isinstance(key, str) or not NAME.match(key):
            errors.add(f"{where}.input_mapping", f"{key!r} is not a valid input name.")
    for name, source in step["output_mapping"].items():
        if not NAME.match(name):
            errors.add(f"{where}.output_mapping", f"{name!r} is not a valid variable name.")
        try:
            parsed = condition_parse(source) if isinstance(source, str) else None
        except ConditionError:
            parsed = None
        if parsed is None or parsed.tree[0] != "path" or parsed.tree[1][0] not in RESULT_ROOTS:
            errors.add(
                f"{where}.output_mapping.{name}", f"Must be a path into the step's result ({', '.join(RESULT_ROOTS)})."
            )
    if "timeout_seconds" in step and not int_in(step["timeout_seconds"], 1, settings.EXECUTION_MAX_SECONDS):
        errors.add(f"{where}.timeout_seconds", f"A whole number of seconds from 1 to {settings.EXECUTION_MAX_SECONDS}.")
    if step.get("on_error") is not None and step["on_error"] not in STRATEGIES:
        errors.add(f"{where}.on_error", f"One of {list(STRATEGIES)}.")
    if step.get("condition") is not None and not isinstance(step["condition"], str):
        errors.add(f"{where}.condition", "Must be a condition text such as vars.score > 50.")
    return True


def _check_agents(steps: list[dict], organization_id: Any, actor: Any, errors: Errors) -> None:
    wanted: dict[int, uuid.UUID] = {}
    for index, step in enumerate(steps):
        try:
            wanted[index] = uuid.UUID(str(step.get("agent_id")))
        except ValueError:
            errors.add(f"steps.{index}.agent_id", "An agent id (UUID) is required.")
    agents = {
        a.pk: a
        for a in Agent.objects.filter(pk__in=set(wanted.values()), deleted_at__isnull=True).select_related(
            "current_version"
        )
    }
    for index, pk in wanted.items():
        agent = agents.get(pk)
        usable = agent is not None and (
            agent.organization_id == organization_id
            or (agent.organization_id is None and agent.visibility in (Visibility.ORGANIZATION, Visibility.PUBLIC))
        )
        if agent is not None and usable and actor is not None and agent.organization_id is not None:
            usable = bool(agent_rights(actor, agent))
        if agent is None or not usable:
            errors.add(f"steps.{index}.agent_id", f"No agent {pk} in this organization.")
        elif not agent_is_runnable(agent) or agent.status == AgentStatus.ARCHIVED:
            errors.add(f"steps.{index}.agent_id", f"Agent {agent.name!r} is {agent.status} and cannot run; publish it.")
        elif actor is not None and agent.organization_id is not None and "execute" not in agent_rights(actor, agent):
            errors.add(f"steps.{index}.agent_id", f"You may not run agent {agent.name!r}.")
        else:
            steps[index]["agent_id"] = str(pk)


def _fallbacks(steps: list[dict], handling: dict, errors: Errors) -> dict[str, str]:
    """{step id: the step it falls back to}; reports unknown targets and cycles."""
    ids = {s["id"] for s in steps}
    default = handling.get("fallback_step") if handling.get("strategy") == "fallback" else None
    edges: dict[str, str] = {}
    for index, step in enumerate(steps):
        strategy = step.get("on_error") or handling.get("strategy")
        if strategy != "fallback":
            continue
        target = step.get("fallback_step") or default
        if step.get("fallback_step") == step["id"]:
            errors.add(f"steps.{index}.fallback_step", "A step cannot fall back to itself (a cycle).")
        elif target is None:
            errors.add(f"steps.{index}.fallback_step", "on_error is fallback: name the step to fall back to.")
        elif target not in ids:
            errors.add(f"steps.{index}.fallback_step", f"No step {target!r} in this chain.")
        elif target != step["id"]:  # the chain's default fallback does not fall back to itself
            edges[step["id"]] = target
    for start in edges:
        seen, current = [start], edges[start]
        while current in edges and current not in seen:
            seen.append(current)
            current = edges[current]
        if current in seen:
            loop = " → ".join([*seen[seen.index(current) :], current])
            errors.add("steps", f"The fallbacks form a cycle: {loop}.")
            return {}
    return edges


def _check_flow(steps: list[dict], edges: dict[str, str], errors: Errors) -> None:
    """Every mapping and condition refers only to what runs before the step."""
    by_id = {s["id"]: s for s in steps}
    position = {s["id"]: i for i, s in enumerate(steps)}
    fallback_only = set(edges.values())
    referrers: dict[str, list[str]] = {}
    for source, target in edges.items():
        referrers.setdefault(target, []).append(source)

    def chain_of(step_id: str) -> list[str]:
        out = []
        while step_id in edges and edges[step_id] not in out:
            step_id = edges[step_id]
            out.append(step_id)
        return out

    scopes: dict[str, _Scope] = {}
    variables: set[str] = set()
    done: set[str] = set()
    for step in steps:
        if step["id"] in fallback_only:
            continue
        scopes[step["id"]] = _Scope(set(variables), set(done))
        for member in [step["id"], *chain_of(step["id"])]:
            variables |= set(by_id[member]["output_mapping"])
            done.add(member)

    def scope_of(step_id: str) -> _Scope:
        if step_id not in scopes:
            parents = [scope_of(r) for r in referrers.get(step_id, [])]
            # Runs in place of any of its referrers: only what all of them had is certain.
            scopes[step_id] = _Scope(
                set.intersection(*(p.variables for p in parents)) if parents else set(),
                set.intersection(*(p.steps for p in parents)) if parents else set(),
            )
        return scopes[step_id]

    for step in steps:
        index, scope = position[step["id"]], scope_of(step["id"])
        for key, value in step["input_mapping"].items():
            _check_mapping_value(value, scope, f"steps.{index}.input_mapping.{key}", errors)
        if isinstance(step.get("condition"), str):
            try:
                parsed = condition_parse(step["condition"])
            except ConditionError as exc:
                errors.add(f"steps.{index}.condition", str(exc))
                continue
            for path in sorted(parsed.paths, key=path_text):
                if problem := scope.problem(path):
                    errors.add(f"steps.{index}.condition", problem)


def chain_definition_validate(data: dict[str, Any], *, organization_id: Any, actor: Any = None) -> dict[str, Any]:
    """A whole chain body, normalised; raises InvalidInput listing every problem by path."""
    errors = Errors()
    clean: dict[str, Any] = {}
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        errors.add("name", "A name of 1 to 200 characters is required.")
    else:
        clean["name"] = name.strip()
    description = data.get("description", "")
    if not isinstance(description, str):
        errors.add("description", "Must be a string.")
    clean["description"] = description if isinstance(description, str) else ""
    status = data.get("status", "active")
    if status not in ("active", "inactive", "deprecated"):
        errors.add("status", "One of active, inactive, deprecated.")
    clean["status"] = status
    timeout = data.get("timeout_seconds", 3600)
    if not int_in(timeout, 1, settings.EXECUTION_MAX_SECONDS * 4):
        errors.add("timeout_seconds", f"A whole number of seconds from 1 to {settings.EXECUTION_MAX_SECONDS * 4}.")
    clean["timeout_seconds"] = timeout
    clean["retry_policy"] = _retry_policy(data.get("retry_policy") or {}, errors)
    handling = data.get("error_handling") or {}
    if not isinstance(handling, dict) or set(handling) - {"strategy", "fallback_step"}:
        errors.add("error_handling", 'An object: {"strategy": "stop" | "continue" | "fallback", "fallback_step": id}.')
        handling = {}
    handling = {"strategy": handling.get("strategy") or "stop", "fallback_step": handling.get("fallback_step")}
    if handling["strategy"] not in STRATEGIES:
        errors.add("error_handling.strategy", f"One of {list(STRATEGIES)}.")
    clean["error_handling"] = handling
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps or len(steps) > MAX_STEPS:
        errors.add("steps", f"A list of 1 to {MAX_STEPS} steps is required.")
        raise InvalidInput("The chain is invalid.", validation_errors=errors.by_field)
    steps = [dict(s) if isinstance(s, dict) else s for s in steps]
    ids: set[str] = set()
    # Every step is checked (not only up to the first bad one), so all problems are listed.
    shaped = [_check_step_shape(step, i, errors, ids) for i, step in enumerate(steps)]
    if all(shaped):
        if handling["strategy"] == "fallback" and handling["fallback_step"] not in ids:
            errors.add("error_handling.fallback_step", "Name a step of this chain to fall back to.")
        _check_agents(steps, organization_id, actor, errors)
        edges = _fallbacks(steps, handling, errors)
        if not errors:
            _check_flow(steps, edges, errors)
    if errors:
        raise InvalidInput("The chain is invalid.", validation_errors=errors.by_field)
    clean["steps"] = steps
    return clean


def _retry_policy(value: Any, errors: Errors) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - {"max_retries", "backoff_seconds", "backoff_multiplier"}:
        errors.add("retry_policy", "An object with max_retries, backoff_seconds, backoff_multiplier.")
        return {}
    policy = {"max_retries": 0, "backoff_seconds": 1.0, "backoff_multiplier": 2.0, **value}
    if not int_in(policy["max_retries"], 0, MAX_RETRIES):
        errors.add("retry_policy.max_retries", f"A whole number from 0 to {MAX_RETRIES}.")
    for key, low, high in (("backoff_seconds", 0, 3600), ("backoff_multiplier", 1, 10)):
        number = policy[key]
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not low <= number <= high:
            errors.add(f"retry_policy.{key}", f"A number from {low} to {high}.")
    return policy
