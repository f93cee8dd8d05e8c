"""What agents tells the apps above it, so that agents imports none of them.

``agent_event`` is sent inside the transaction of an agent change, with ``organization_id``,
``event_type`` (one of ``agents.triggers.patterns.EVENT_TYPES``), ``payload`` and
``agent_id``. ``executions.events`` receives it and writes the platform event (and its
webhook deliveries) in that same transaction, so a rolled-back change leaves no event.
"""

from __future__ import annotations

from django.dispatch import Signal

agent_event = Signal()
