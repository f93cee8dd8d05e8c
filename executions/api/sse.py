"""Server-Sent Events of one execution: persisted events first, then live ones from Redis.

Subscribing before reading the database closes the gap between the two: an event committed
while we replay arrives on the channel too, and ``seq`` drops the duplicate.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from redis.asyncio import Redis
from rest_framework.renderers import BaseRenderer

from config.db import connection_release
from executions.models import TERMINAL_STATUSES, Execution, ExecutionEvent
from executions.streaming import channel

FINAL_EVENTS = frozenset({"execution_completed", "execution_failed"})
KEEPALIVE_SECONDS = 15
MAX_STREAM_SECONDS = 3600


def format_event(event: str, data: Any, event_id: int | None = None) -> str:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines += [f"event: {event}", "data: " + json.dumps(data, cls=DjangoJSONEncoder), "", ""]
    return "\n".join(lines)


# Both read and give the connection back at once: a stream stays open for up to an hour
# and must not hold one of the web process's pooled connections meanwhile.
def _persisted(execution_id: Any, after: int) -> list[tuple[int, str, Any]]:
    try:
        return list(
            ExecutionEvent.objects.filter(execution_id=execution_id, seq__gt=after)
            .order_by("seq")
            .values_list("seq", "event", "data")
        )
    finally:
        connection_release()


def _is_terminal(execution_id: Any) -> bool:
    try:
        status = Execution.objects.filter(pk=execution_id).values_list("status", flat=True).first()
    finally:
        connection_release()
    return status in TERMINAL_STATUSES


class EventStreamRenderer(BaseRenderer):
    """Lets ``Accept: text/event-stream`` (what EventSource sends) through content negotiation.

    The stream itself is a StreamingHttpResponse and never passes through a renderer, and an
    error before it starts (401, 404, 429) is rendered as JSON (``ErrorsAsJson`` on the view);
    ``render`` writes JSON should anything else reach it.
    """

    media_type = "text/event-stream"
    format = "event-stream"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return json.dumps(data, default=str).encode()


KEEPALIVE = "keep-alive"  # the event name execution_events yields for an idle stretch


async def execution_events(
    execution_id: Any, last_id: int = 0, *, until: frozenset[str] = FINAL_EVENTS
) -> AsyncIterator[tuple[int | None, str, Any]]:
    """(seq, event, data) of one execution: persisted first, then live; ends after an event of
    ``until`` (the final ones by default) or after MAX_STREAM_SECONDS. Live-only events (token
    deltas) have no seq. An idle stretch of KEEPALIVE_SECONDS yields ``(None, KEEPALIVE, None)``."""
    redis = Redis.from_url(settings.REDIS_URL)
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel(execution_id))
    try:
        last = last_id
        for seq, event, data in await sync_to_async(_persisted)(execution_id, last):
            last = seq
            yield seq, event, data
            if event in until:
                return
        if await sync_to_async(_is_terminal)(execution_id):
            # It may have ended between the two reads; its final events were stored in the
            # transaction that ended it, so they are there now.
            for seq, event, data in await sync_to_async(_persisted)(execution_id, last):
                yield seq, event, data
                if event in until:
                    return
            return
        started = time.monotonic()
        idle = 0.0
        while time.monotonic() - started < MAX_STREAM_SECONDS:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                idle += 1.0
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield None, KEEPALIVE, None
                    # A missed final event (Redis restart) must not leave the client hanging.
                    for seq, event, data in await sync_to_async(_persisted)(execution_id, last):
                        last = seq
                        yield seq, event, data
                        if event in until:
                            return
                continue
            idle = 0.0
            payload = json.loads(message["data"])
            seq = payload.get("id")
            if seq is not None:
                if seq <= last:
                    continue
                last = seq
            yield seq, payload["event"], payload.get("data", {})
            if payload["event"] in until:
                return
            await asyncio.sleep(0)
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()
        await redis.aclose()


async def event_stream(execution_id: Any, last_id: int = 0) -> AsyncIterator[str]:
    async for seq, event, data in execution_events(execution_id, last_id):
        yield ": keep-alive\n\n" if event == KEEPALIVE else format_event(event, data, seq)
