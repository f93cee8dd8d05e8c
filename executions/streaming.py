"""Live events of executions over Redis pub/sub (the SSE endpoint subscribes)."""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from redis import Redis

logger = logging.getLogger(__name__)


def channel(execution_id: Any) -> str:
    return f"agentry:execution:{execution_id}"


@cache
def _redis():
    return Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=2)


def publish(execution_id: Any, events: list[dict[str, Any]]) -> int:
    """Publish ``[{"id", "event", "data"}, ...]``; a Redis outage only costs live viewers.

    Returns how many subscribers received them (PUBLISH answers that; 0 on an outage), so a
    caller that publishes anyway learns whether anyone watches without asking separately."""
    if not events:
        return 0
    try:
        pipe = _redis().pipeline(transaction=False)
        for event in events:
            pipe.publish(channel(execution_id), json.dumps(event, cls=DjangoJSONEncoder))
        return max(int(n) for n in pipe.execute())
    except Exception:
        logger.warning("could not publish execution events", exc_info=True)
        return 0


def has_subscribers(execution_id: Any) -> bool:
    try:
        return bool(dict(_redis().pubsub_numsub(channel(execution_id))).get(channel(execution_id).encode(), 0))
    except Exception:
        return False
