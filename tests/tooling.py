"""A tool that works across processes, for tests with real workers.

``note`` POSTs its text and the call's idempotency key to the URL in ``NOTE_TOOL_URL``; the
test runs a small receiver there and reads what arrived. Set ``AGENTRY_TOOL_PORT`` to
``tests.tooling.NoteToolPort`` in the worker's environment.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from executions.runtime.tools_port import LocalTool, LocalToolPort, register_local_tool


def _note(*, context, text: str) -> dict[str, Any]:
    response = httpx.post(
        os.environ["NOTE_TOOL_URL"],
        json={"text": text, "key": context.idempotency_key, "execution": str(context.execution.pk)},
        timeout=10,
    )
    response.raise_for_status()
    return {"noted": text}


NOTE = LocalTool(
    name="note",
    handler=_note,
    description="Write a note down.",
    parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    idempotent=True,  # the receiver deduplicates by idempotency key
)


class NoteToolPort(LocalToolPort):
    def __init__(self) -> None:
        register_local_tool(NOTE)


class NoteReceiver:
    """Records every POST; ``by_key`` tells how often each idempotency key arrived."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.calls.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/note"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def by_key(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.lock:
            for call in self.calls:
                counts[call["key"]] = counts.get(call["key"], 0) + 1
        return counts

    def close(self) -> None:
        self.server.shutdown()


def model_calls_by_task(fake: Any) -> dict[str, list[int]]:
    """Each run's model calls seen by the fake provider, keyed by the run's task (its user
    message): per call, how many tool results the conversation carried (0 for the first
    call, 1 after one tool round). A request a kill cut off mid-body never reached a model
    and is not counted."""
    per_run: dict[str, list[int]] = {}
    for request in fake.chat_requests:
        if request.body is None:
            continue
        messages = request.body["messages"]
        job = next(m["content"] for m in messages if m["role"] == "user")
        per_run.setdefault(job, []).append(sum(1 for m in messages if m["role"] == "tool"))
    return per_run


class BrokenToolPort(LocalToolPort):
    """A tool port with a bug: listing the tools raises. For tests of what a run does when a
    Python exception escapes its loop (``AGENTRY_TOOL_PORT=tests.tooling.BrokenToolPort``)."""

    def specs(self, *, context: Any) -> Any:
        raise RuntimeError("a bug in the tool port")
