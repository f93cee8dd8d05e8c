"""The fake LLM provider of the benchmarks, run as its own process.

The fake provider the test-suite uses too (``bench.fakes.llm_server``: keep-alive HTTP/1.1,
TCP_NODELAY, a listen backlog of 4096, no per-request logging) with the benchmark's responder: the default
"two model calls, one tool call", or ``rounds`` tool calls one after the other when the task
says ``[rounds=N]`` (P1 varies the number of steps that way).

    python -m bench.fake_provider --port 8765 --latency-ms 0
"""

from __future__ import annotations

import argparse
import re

from bench.fakes.llm_server import FakeLLMServer, serve_until_stopped
from bench.fakes.script import Conversation, FakeToolCall, Reply, ScriptItem, placeholder_arguments

ROUNDS = re.compile(r"\[rounds=(\d+)\]")
FINAL_TEXT = "Done: two model calls, one tool call."


def rounds_in(text: str) -> int:
    match = ROUNDS.search(text or "")
    return int(match.group(1)) if match else 1


def bench_responder(chat: Conversation) -> ScriptItem:
    """Call the first offered tool until the task's number of rounds is reached, then answer."""
    if chat.tools and len(chat.tool_results) < rounds_in(chat.last_user_text):
        name, schema = chat.tools[0]
        arguments = placeholder_arguments(schema)
        return Reply(tool_calls=[FakeToolCall(name=name, arguments=arguments)])
    return Reply(text=FINAL_TEXT)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_provider", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args(argv)
    server = FakeLLMServer(
        host=args.host, port=args.port, latency_ms=args.latency_ms, record=False, responder=bench_responder
    )
    serve_until_stopped(server, "fake provider")


if __name__ == "__main__":
    main()
