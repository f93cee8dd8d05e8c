"""Validate without saving (``agents/validate/``, ``chains/validate/``).

The creation itself runs, in a savepoint that is always rolled back: the answer is exactly
what create would answer (input, names taken, the plan's ``max_agents``, agents a chain
cannot run), and nothing is written, not even the activity row or the event (both are
rows of the same transaction).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from agents.selectors import agent_warnings
from agents.services.agents import agent_create
from agents.services.chains import chain_create

if TYPE_CHECKING:
    from accounts.access import Actor


def agent_validate(*, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """Raise what ``agent_create`` would raise; else the slug it would get and its warnings."""
    with transaction.atomic():
        agent = agent_create(actor=actor, data=data)
        result = {"valid": True, "name": agent.name, "slug": agent.slug, "warnings": agent_warnings(agent)}
        transaction.set_rollback(True)
    return result


def chain_validate(*, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """Raise what ``chain_create`` would raise; else the steps as they would be stored."""
    with transaction.atomic():
        chain = chain_create(actor=actor, data=data)
        result = {"valid": True, "name": chain.name, "steps": chain.steps, "warnings": []}
        transaction.set_rollback(True)
    return result
