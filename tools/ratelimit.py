"""Tool rate limits in Redis: fixed windows, checked and counted in one atomic script.

A call passes only if every window it falls in (this tool for this agent per minute and
per hour, all tools for this agent per minute) has room; then all of them are counted
together. Doing the check and the increments in one Lua script means two workers racing
for the last slot cannot both get it, and a refused call uses up no window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from redis import Redis

# KEYS: window keys; ARGV: limit1, ttl1, limit2, ttl2, ...
# Returns 0 when counted, else the 1-based index of the first full window.
_SCRIPT = """
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  if used >= tonumber(ARGV[2 * i - 1]) then
    return i
  end
end
for i, key in ipairs(KEYS) do
  local used = redis.call('INCR', key)
  if used == 1 then
    redis.call('EXPIRE', key, tonumber(ARGV[2 * i]))
  end
end
return 0
"""

# Every agent's tool calls per minute, whatever the tools' own limits (a runaway loop guard).
DEFAULT_AGENT_CALLS_PER_MINUTE = 120


@dataclass(frozen=True)
class Window:
    name: str  # what the model is told: "email_send: 20 per minute"
    key: str
    limit: int
    seconds: int


@cache
def _client(url: str) -> Any:
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)


@cache
def _script(url: str) -> Any:
    return _client(url).register_script(_SCRIPT)


def windows_for(*, tool: Any, agent_id: Any, config: dict[str, Any], now: float | None = None) -> list[Window]:
    now = time.time() if now is None else now
    prefix = getattr(settings, "CACHE_KEY_PREFIX_TOOLS", "agentry:tools:rl")
    windows = []
    for limit, seconds, label in (
        (tool.rate_limit_per_minute, 60, "minute"),
        (tool.rate_limit_per_hour, 3600, "hour"),
    ):
        if limit:
            bucket = int(now // seconds)
            windows.append(
                Window(
                    f"{tool.name}: {limit} per {label}",
                    f"{prefix}:{tool.name}:{agent_id}:{seconds}:{bucket}",
                    limit,
                    seconds,
                )
            )
    per_agent = (config.get("limits") or {}).get("max_tool_calls_per_minute") or getattr(
        settings, "AGENTRY_AGENT_TOOL_CALLS_PER_MINUTE", DEFAULT_AGENT_CALLS_PER_MINUTE
    )
    if per_agent:
        bucket = int(now // 60)
        windows.append(
            Window(f"all tools: {per_agent} per minute", f"{prefix}:*:{agent_id}:60:{bucket}", per_agent, 60)
        )
    return windows


def take(windows: list[Window]) -> Window | None:
    """Count one call in every window; the full window instead when one has no room."""
    if not windows:
        return None
    keys = [w.key for w in windows]
    args: list[int] = []
    for w in windows:
        # The key outlives its window a little, so a clock skew between workers never resets it early.
        args.extend([w.limit, w.seconds + 5])
    full = int(_script(settings.REDIS_URL)(keys=keys, args=args))
    return windows[full - 1] if full else None
