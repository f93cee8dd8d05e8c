"""Reads for executions, scoped to the actor's organization and the agents they may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from agents.access import visible_agents_q
from agents.models import Agent
from billing.access import Actor
from config.api.errors import NotFound
from executions.models import Execution


def execution_list(*, actor: Actor) -> QuerySet[Execution]:
    own_agents = Agent.objects.filter(visible_agents_q(actor)).values("pk")
    return (
        Execution.objects.filter(organization=actor.organization)
        # Runs of platform agents belong to the organization that ran them.
        .filter(Q(agent__in=own_agents) | Q(agent__organization__isnull=True))
        .select_related("agent_version")
    )


def execution_get(*, actor: Actor, execution_id: Any) -> Execution:
    import uuid

    try:
        pk = uuid.UUID(str(execution_id))
    except ValueError:
        raise NotFound("Execution not found.") from None
    execution = execution_list(actor=actor).filter(pk=pk).first()
    if execution is None:
        raise NotFound("Execution not found.", details={"execution_id": str(execution_id)})
    return execution
