"""Emitting platform events: written to the event log in the surrounding transaction."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.dispatch import receiver

from agents.models import Agent
from agents.signals import agent_event
from agents.triggers.patterns import EVENT_TYPES
from executions.models import PlatformEvent
from executions.webhooks.services import webhook_deliveries_for_event_safely

logger = logging.getLogger(__name__)


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def event_emit(
    *,
    organization_id: Any,
    event_type: str,
    payload: dict[str, Any],
    agent_id: Any = None,
    execution_id: Any = None,
) -> None:
    """Record ``event_type`` in the current transaction (at once outside one).

    A transactional outbox: the row commits or rolls back with the change that caused it,
    so a rolled-back change leaves no event and a worker killed right after the commit
    cannot lose one (an on_commit write could be lost that way — the fault suite saw it).
    Webhook deliveries are rows of the same transaction; sending them is queued on commit
    and ``webhooks_retry_due`` picks up any whose queue message was lost.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown platform event {event_type!r}")
    data = _jsonable(payload)

    def write() -> None:
        event = PlatformEvent.objects.create(
            organization_id=organization_id,
            event_type=event_type,
            payload=data,
            agent_id=agent_id,
            execution_id=execution_id,
        )
        # Organizations' webhook endpoints receive what the log receives.
        webhook_deliveries_for_event_safely(event)

    write()


@receiver(agent_event, sender=Agent, dispatch_uid="agentry_platform_event_from_agents")
def _agent_event(
    sender: type, *, organization_id: Any, event_type: str, payload: dict[str, Any], agent_id: Any, **kwargs: Any
) -> None:
    """Agents' own events (ai.agent.*), sent by agents.services without importing this app."""
    event_emit(organization_id=organization_id, event_type=event_type, payload=payload, agent_id=agent_id)
