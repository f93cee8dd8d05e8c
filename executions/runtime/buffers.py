"""The events of a run's current step (``EventBuffer``): stored with the step's commit, published
after it; ``event_buffer_for`` continues an execution's event sequence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from executions import streaming
from executions.models import ExecutionEvent


@dataclass
class EventBuffer:
    """Events of the current step: persisted with the step's commit, published after it."""

    execution_id: Any
    seq: int
    pending: list[ExecutionEvent] = field(default_factory=list)

    def add(self, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        self.pending.append(ExecutionEvent(execution_id=self.execution_id, seq=self.seq, event=event, data=data))

    def flush(self) -> None:
        """Call inside the transaction that commits the step."""
        if not self.pending:
            return
        events, self.pending = self.pending, []
        ExecutionEvent.objects.bulk_create(events)
        payload = [{"id": e.seq, "event": e.event, "data": e.data} for e in events]
        transaction.on_commit(lambda: streaming.publish(self.execution_id, payload))


def event_buffer_for(execution_id: Any) -> EventBuffer:
    """A buffer whose next event follows the last one stored for the execution. Call it with
    the run's row locked (or as its lease holder): events are numbered from what is stored."""
    last = (
        ExecutionEvent.objects.filter(execution_id=execution_id).order_by("-seq").values_list("seq", flat=True).first()
    )
    return EventBuffer(execution_id, last or 0)
