"""Reading ``text/event-stream`` (the WHATWG Server-Sent Events format) line by line.

Only what Agentry's stream endpoint needs, but by the format's rules: ``id``, ``event``,
``data`` (several lines joined with newlines) and ``retry`` fields, comment lines (keep-alives)
ignored, a blank line ending an event, an event without data never dispatched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["TERMINAL_EVENTS", "Event", "EventParser"]

# The last event of a run's stream: every final status ends with one of them
# (cancelled and timed-out runs end with execution_failed, its data naming the status).
TERMINAL_EVENTS: frozenset[str] = frozenset({"execution_completed", "execution_failed"})


@dataclass(frozen=True)
class Event:
    """One event of an execution's stream.

    ``id`` is the event's sequence number within the run (``None`` for live-only events such
    as ``think_token``, which are not persisted and cannot be resumed from); ``data`` is the
    decoded JSON payload (the raw text if it was not JSON).
    """

    id: int | None
    event: str
    data: Any

    @property
    def is_terminal(self) -> bool:
        return self.event in TERMINAL_EVENTS


class EventParser:
    """Feed it the stream's lines (without line endings); it returns an event when one ends."""

    def __init__(self) -> None:
        self.retry_ms: int | None = None  # the server's reconnection delay, when it sent one
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None  # an unknown field is ignored, as the format says

    def _dispatch(self) -> Event | None:
        raw_id, event, data = self._id, self._event or "message", self._data
        self._id, self._event, self._data = None, "", []
        if not data:
            return None
        text = "\n".join(data)
        try:
            payload: Any = json.loads(text)
        except ValueError:
            payload = text
        return Event(id=int(raw_id) if raw_id and raw_id.isdigit() else None, event=event, data=payload)
