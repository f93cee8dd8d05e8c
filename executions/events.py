"""Emitting platform events: written to the event log after the surrounding commit."""

from __future__ import annotations

import logging
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from agents.triggers.patterns import EVENT_TYPES
from executions.models import PlatformEvent

logger = logging.getLogger(__name__)


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    import json

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
        from executions.webhooks.services import webhook_deliveries_for_event_safely

        webhook_deliveries_for_event_safely(event)

    write()
