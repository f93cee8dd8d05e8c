"""The tool view of an agent (``selectors.tool_view``: catalog, grants, modules, risk rules)
kept per process between runs, and the registry version that says when it is stale.

Building the view is a query with three subqueries and a model instance per tool row, and
it rarely changes: every run of an agent read the same answer. The view is kept per
(organization, agent) in the process, tagged with the registry version, a counter in Redis
that every change to what a view contains moves on (``registry_changed``, after the change
commits: tools, MCP servers and their sharing, capability grants, module endpoints, risk
rules). A run reads the counter (one Redis GET) and rebuilds the view only when it moved.

Model signals bump it for saves and deletes; a ``QuerySet.update`` of those tables sends no
signal, so the code that does one calls ``registry_changed`` itself. Two things bound what a
missed bump could cost: an entry is rebuilt after ``MAX_AGE_SECONDS`` whatever the counter
says, and without Redis there is no cache at all (every run reads the database, as before).
The counter starts at a random number, so a Redis that lost its data does not come back with
a value a process may have cached a view under.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from functools import cache
from typing import Any

from django.conf import settings
from django.db import transaction
from redis import Redis

from tools.selectors import ToolView, tool_view

logger = logging.getLogger(__name__)

VERSION_KEY = "agentry:tools:registry-version"
# The longest a process trusts a view whose counter did not move (a bump lost to a Redis outage).
MAX_AGE_SECONDS = 60.0
MAX_ENTRIES = 4096

_views: dict[tuple[str, str], tuple[bytes, float, ToolView]] = {}
_lock = threading.Lock()


@cache
def _client(url: str) -> Any:
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)


def registry_version() -> bytes | None:
    """The current registry version; None when Redis cannot say (then nothing is cached)."""
    client = _client(settings.REDIS_URL)
    try:
        value = client.get(VERSION_KEY)
        if value is None:
            client.set(VERSION_KEY, secrets.randbelow(2**52), nx=True)
            value = client.get(VERSION_KEY)
    except Exception:
        logger.warning(
            "the tool registry version is unavailable; reading the tool view from the database", exc_info=True
        )
        return None
    return value


def _bump() -> None:
    try:
        _client(settings.REDIS_URL).incr(VERSION_KEY)
    except Exception:
        # Cached views then live out MAX_AGE_SECONDS at most.
        logger.warning("could not move the tool registry version on", exc_info=True)


def registry_changed(**_signal: Any) -> None:
    """Every process's cached tool views are stale: moved on now (this transaction's own
    reads see the change) and again once it commits (a process that read the old rows
    meanwhile cached them under the version of now). Also a receiver for the models'
    save/delete signals."""
    _bump()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(_bump)


def cached_tool_view(*, organization_id: Any, agent_id: Any) -> ToolView:
    """``tool_view``, from this process's cache when the registry has not changed since."""
    version = registry_version()
    if version is None:
        return tool_view(organization_id=organization_id, agent_id=agent_id)
    key = (str(organization_id), str(agent_id))
    now = time.monotonic()
    entry = _views.get(key)
    if entry is not None and entry[0] == version and now - entry[1] < MAX_AGE_SECONDS:
        return entry[2]
    # The version was read before the database: a change committed in between moved it on,
    # so this view is replaced by the next run that reads the newer version.
    view = tool_view(organization_id=organization_id, agent_id=agent_id)
    with _lock:
        if len(_views) >= MAX_ENTRIES:
            _views.clear()
        _views[key] = (version, now, view)
    return view


def clear() -> None:
    """Forget every cached view of this process (tests)."""
    with _lock:
        _views.clear()
