"""Counting the outside calls a piece of work makes (an execution's ``api_calls_count``).

The runtime wraps each tool call in ``counting()``; the places that send a request to another
service on a tool's behalf (``tools.ssrf.fetch``, the MCP client's ``tools/call``) call
``count_call()``. A context variable, so concurrent runs on the threads of one worker each
count their own, and nothing is counted outside a ``counting()`` block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class CallCounter:
    calls: int = 0


_current: ContextVar[CallCounter | None] = ContextVar("agentry_call_counter", default=None)


def count_call(n: int = 1) -> None:
    """One more request sent to another service (a no-op outside ``counting()``)."""
    counter = _current.get()
    if counter is not None:
        counter.calls += n


@contextmanager
def counting() -> Iterator[CallCounter]:
    counter = CallCounter()
    token = _current.set(counter)
    try:
        yield counter
    finally:
        _current.reset(token)
