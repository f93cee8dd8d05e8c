"""The fake provider's own ceiling, measured alone before it serves any figure.

DESIGN.md §12: a fake provider used for load must not be the bottleneck. The fake
(``bench.fake_provider``) is hammered with the chat request a benchmark run sends (system
prompt, one tool offered, answered with a tool call), over keep-alive connections, by the
bench's load client; its requests per second is the most any figure can ask of it. Each
figure that uses it reports the rate it needed, as a fraction of this ceiling.

The client runs on the same 2 cores, so the ceiling printed is a lower bound.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from bench import load
from bench.env import Processes, http_ok
from bench.report import Figure, percentile

CHAT_BODY = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are the benchmark agent. " * 20},
        {"role": "user", "content": "Look the key up and answer."},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look a key up.",
                "parameters": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
            },
        }
    ],
    "temperature": 0.7,
    "max_completion_tokens": 4096,
}


def measure(provider_url: str, *, clients: int, seconds: float) -> dict[str, Any]:
    root = provider_url.removesuffix("/v1")
    body = json.dumps(CHAT_BODY).encode()
    step = load.simple_step("POST", "/v1/chat/completions", body, {"Authorization": "Bearer sk-fake"})
    result = load.run(load.closed_loop(root, step, clients=clients, seconds=seconds, warmup=3))
    latencies = result.latencies()

    stats = httpx.get(root + "/_fake/stats", timeout=5).json()
    return {
        "requests_per_s": round(result.rate, 1),
        "clients": clients,
        "seconds": round(result.elapsed_s, 2),
        "requests": len(result.ok),
        "errors": result.errors,
        "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)},
        "connections_accepted": stats.get("connections"),
    }


def run(args: Any) -> Figure:
    figure = Figure("FAKE", "fake provider ceiling (alone)")
    with Processes() as procs:
        url = procs.fake_provider(latency_ms=0)
        assert http_ok(url.removesuffix("/v1") + "/health")
        results = [measure(url, clients=c, seconds=args.fake_seconds) for c in args.fake_clients]
    best = max(results, key=lambda r: r["requests_per_s"])
    figure.details = {"runs": results, "ceiling_requests_per_s": best["requests_per_s"]}
    figure.add(
        "chat completions/s (zero latency)",
        best["requests_per_s"],
        unit="req/s",
        target="well above what any figure needs",
    )
    figure.note(
        f"Best of {[r['clients'] for r in results]} keep-alive clients for {args.fake_seconds:g} s each; "
        f"{best['connections_accepted']} TCP connections were accepted in all (keep-alive holds); the load "
        "client shares the 2 cores, so this is a lower bound of the fake's ceiling."
    )
    return figure
