"""Requests- and tokens-per-minute limits of provider connections, in Redis (atomic).

Fixed one-minute windows keyed by connection: a Lua script checks and counts a request in
one round trip, so concurrent workers never overshoot the request limit; tokens are added
after each call with its real usage and checked before the next one.
"""

from __future__ import annotations

import time

from executions.streaming import _redis

WINDOW = 60

_ACQUIRE = """
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
if (rpm > 0 and requests >= rpm) or (tpm > 0 and tokens >= tpm) then
  return 0
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def _keys(connection_id: str, window: int) -> list[str]:
    return [f"agentry:rl:{connection_id}:{window}:req", f"agentry:rl:{connection_id}:{window}:tok"]


def try_acquire(connection_id: str, *, rpm: int | None, tpm: int | None, now: float | None = None) -> float:
    """0 when a request may go now (and it is counted); else seconds until the next window."""
    now = time.time() if now is None else now
    window = int(now // WINDOW)
    allowed = _redis().eval(_ACQUIRE, 2, *_keys(connection_id, window), rpm or 0, tpm or 0, WINDOW * 2)
    if allowed:
        return 0.0
    return (window + 1) * WINDOW - now


def add_tokens(connection_id: str, tokens: int, *, now: float | None = None) -> None:
    now = time.time() if now is None else now
    key = _keys(connection_id, int(now // WINDOW))[1]
    pipe = _redis().pipeline(transaction=False)
    pipe.incrby(key, tokens)
    pipe.expire(key, WINDOW * 2)
    pipe.execute()
