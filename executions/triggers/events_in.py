"""Events in: ``POST events/`` fans one event out to the organization's matching agents.

An agent runs when it may be triggered (active, runnable; platform agents switched on by the
organization), one of its current version's ``trigger_events`` patterns matches the type,
and its ``trigger_conditions`` hold on ``{"event": {...}, "payload": {...}}``. The payload is
the run's context (checked against the agent's input_schema); the type names the task.
Only the posting organization's agents are ever considered.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from accounts.access import Actor
from agents.models import Agent
from agents.selectors import agent_effective_config
from agents.triggers.conditions import ConditionError, trigger_conditions_hold
from agents.triggers.patterns import RESERVED_PREFIX, event_type_problem, pattern_matches
from config.api.errors import InvalidInput
from executions.models import Execution, TriggerAttempt, TriggerType
from executions.triggers.common import trigger_agents, trigger_start

logger = logging.getLogger(__name__)

MAX_KEY_CHARS = 150  # the per-agent key adds ":<agent id>" within Execution's 200


@dataclass
class EventDispatch:
    event_id: str
    event_type: str
    executions: list[Execution] = field(default_factory=list)
    replayed: list[Execution] = field(default_factory=list)  # same Idempotency-Key as before
    refused: list[TriggerAttempt] = field(default_factory=list)
    conditions_not_met: list[Agent] = field(default_factory=list)


def event_agent_matches(*, agent: Agent, config: dict[str, Any], event_type: str, data: dict[str, Any]) -> bool | None:
    """True: run it; False: its conditions say no; None: no pattern matches the type."""
    if not any(pattern_matches(p, event_type) for p in config.get("trigger_events") or []):
        return None
    try:
        return trigger_conditions_hold(config.get("trigger_conditions") or {}, data)
    except ConditionError:
        # Validated on save; a condition stored before the language existed never fires.
        logger.warning("agent %s has trigger_conditions that do not parse", agent.pk)
        return False


def event_dispatch(*, actor: Actor, event_type: Any, payload: Any, idempotency_key: str | None = None) -> EventDispatch:
    """Start every matching agent of the actor's organization; returns what happened."""
    errors: dict[str, list[str]] = {}
    problem = event_type_problem(event_type)
    if problem:
        errors["type"] = [problem]
    elif str(event_type).split(".")[0] == RESERVED_PREFIX:
        errors["type"] = ["ai.* events are the platform's own; post your application's events."]
    if not isinstance(payload, dict):
        errors["payload"] = ["Must be a JSON object."]
    if idempotency_key is not None and not (0 < len(idempotency_key) <= MAX_KEY_CHARS):
        errors["Idempotency-Key"] = [f"1 to {MAX_KEY_CHARS} characters."]
    if errors:
        raise InvalidInput("The event is invalid.", validation_errors=errors)
    return _fan_out(
        organization=actor.organization,
        actor=actor,
        event_type=event_type,
        payload=payload,
        key_prefix=f"event:{idempotency_key}" if idempotency_key else None,
    )


def domain_event_dispatch(
    *, execution: Execution, event_type: str, payload: dict[str, Any], idempotency_key: str
) -> EventDispatch:
    """A domain event a run's tool caused (crm.contact.created …), fanned out like a posted one.

    The runs it starts are children of ``execution`` (so MAX_DEPTH ends any loop of agents
    reacting to each other, refused runs recorded as trigger attempts), keyed on the tool call
    (a call repeated after a crash starts nothing twice), and never the emitting agent itself.
    """
    return _fan_out(
        organization=execution.organization,
        actor=None,
        event_type=event_type,
        payload=payload,
        key_prefix=f"event:{idempotency_key}",
        parent=execution,
        skip_agent_id=execution.agent_id,
    )


def _fan_out(
    *,
    organization: Any,
    actor: Actor | None,
    event_type: str,
    payload: dict[str, Any],
    key_prefix: str | None,
    parent: Execution | None = None,
    skip_agent_id: Any = None,
) -> EventDispatch:
    result = EventDispatch(event_id=str(uuid.uuid4()), event_type=event_type)
    data = {"event": {"type": event_type, "id": result.event_id}, "payload": payload}
    for agent in trigger_agents(organization=organization):
        if skip_agent_id is not None and agent.pk == skip_agent_id:
            continue
        assert agent.current_version is not None  # trigger_agents excludes agents without one
        config = agent_effective_config(version=agent.current_version, organization=organization)
        verdict = event_agent_matches(agent=agent, config=config, event_type=event_type, data=data)
        if verdict is None:
            continue
        if verdict is False:
            result.conditions_not_met.append(agent)
            continue
        execution, created, attempt = trigger_start(
            agent=agent,
            organization=organization,
            trigger_type=TriggerType.EVENT,
            task=f"The event {event_type} happened; its payload is the context.",
            context=payload,
            trigger_data={"event_type": event_type, "event_id": result.event_id},
            idempotency_key=f"{key_prefix}:{agent.pk}" if key_prefix else None,
            actor=actor,
            parent=parent,
        )
        if attempt is not None:
            result.refused.append(attempt)
        elif execution is not None:
            (result.executions if created else result.replayed).append(execution)
    return result
