"""An execution's event buffer, continuing its event sequence (``EventBuffer``)."""

from __future__ import annotations

from typing import Any

from executions.models import ExecutionEvent
from executions.runtime.loop import EventBuffer


def event_buffer_for(execution_id: Any) -> EventBuffer:
    """A buffer whose next event follows the last one stored for the execution. Call it with
    the run's row locked (or as its lease holder): events are numbered from what is stored."""
    last = (
        ExecutionEvent.objects.filter(execution_id=execution_id).order_by("-seq").values_list("seq", flat=True).first()
    )
    return EventBuffer(execution_id, last or 0)
