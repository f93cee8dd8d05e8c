"""A fake LLM provider over real HTTP: OpenAI, Groq and Anthropic protocols, scriptable.

Endpoints: ``POST /v1/chat/completions`` (OpenAI), ``POST /openai/v1/chat/completions`` (Groq),
``POST /v1/messages`` (Anthropic), ``POST /v1/embeddings`` and ``/openai/v1/embeddings``,
``GET /health``, ``GET /_fake/stats``. Streams are SSE; everything else is JSON.

Built for load as well as tests (DESIGN.md §12): HTTP/1.1 keep-alive, TCP_NODELAY, a listen
backlog of 4096 (``http.server`` defaults to 5 and drops connections under load), a daemon
thread per connection, each response written in one ``send``, no per-request logging and no
sleeping unless a script item or ``latency_ms`` asks for it.

    python -m bench.fakes.llm_server --port 8765 --latency-ms 0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import protocols
from .script import (
    Conversation,
    Disconnect,
    HttpError,
    RecordedRequest,
    Reply,
    Responder,
    ScriptItem,
    auto_responder,
    conversation,
)

_CHAT_PATHS = {
    "/v1/chat/completions": "openai",
    "/chat/completions": "openai",  # base_url without /v1, as some compatible configs have it
    "/openai/v1/chat/completions": "groq",
    "/v1/messages": "anthropic",
}
_EMBEDDING_PATHS = {"/v1/embeddings", "/embeddings", "/openai/v1/embeddings"}
_SECRET_HEADERS = {"authorization", "x-api-key", "api-key"}
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required"}


class FakeLLMServer:
    """Run with ``start()``/``stop()`` or as a context manager; script with ``script(...)``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        record: bool = True,
        embedding_dimensions: int = 1536,
        responder: Responder = auto_responder,
    ) -> None:
        self.latency_ms = latency_ms
        self.record = record
        self.embedding_dimensions = embedding_dimensions
        self.responder: Responder = responder  # used when the chat script is empty
        self._chat_script: deque[ScriptItem] = deque()
        self._embedding_script: deque[HttpError | Disconnect] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self.request_count = 0
        self.connection_count = 0  # TCP connections accepted: tells whether clients keep them alive
        self._httpd = _Server((host, port), _Handler)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._httpd.server_address[0]}:{self.port}"

    @property
    def allow_entry(self) -> str:
        """The AGENTRY_SSRF_ALLOW entry that lets an organization's connection reach this server
        (and nothing else local): organizations' base URLs go through the SSRF guard."""
        return f"{self._httpd.server_address[0]}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url  # the SDK appends /v1/messages

    @property
    def groq_base_url(self) -> str:
        return self.url  # the SDK appends /openai/v1/chat/completions

    def start(self) -> FakeLLMServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection ----------------------------------------------------

    def script(self, *items: ScriptItem) -> None:
        """Queue answers for the next chat requests (any protocol), in order."""
        with self._lock:
            self._chat_script.extend(items)

    def script_embeddings(self, *items: HttpError | Disconnect) -> None:
        """Queue failures for the next embedding requests (successes need no script)."""
        with self._lock:
            self._embedding_script.extend(items)

    @property
    def pending(self) -> int:
        return len(self._chat_script)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path in _CHAT_PATHS]

    def reset(self) -> None:
        with self._lock:
            self._chat_script.clear()
            self._embedding_script.clear()
            self._requests.clear()
            self.request_count = 0
            self.connection_count = 0

    # -- request handling (called on handler threads) --------------------------------

    def _next(self, queue: deque[Any]) -> Any:
        with self._lock:
            return queue.popleft() if queue else None

    def handle(self, handler: _Handler, body: Any) -> None:
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.request_count += 1
            if self.record:
                headers = {k.lower(): v for k, v in handler.headers.items() if k.lower() not in _SECRET_HEADERS}
                has_auth = any(k.lower() in _SECRET_HEADERS for k in handler.headers)
                self._requests.append(RecordedRequest(handler.command, path, headers, body, has_auth))
        protocol = _CHAT_PATHS.get(path)
        if protocol is not None and isinstance(body, dict):
            chat = conversation(protocol, body)
            item = self._next(self._chat_script) or self.responder(chat)
            self._answer_chat(handler, chat, item)
        elif path in _EMBEDDING_PATHS and isinstance(body, dict):
            item = self._next(self._embedding_script)
            if item is not None:
                self._fail(handler, "openai", item)
                return
            self._sleep(0)
            payload = protocols.embeddings(body, default_dimensions=self.embedding_dimensions)
            handler.send_bytes(200, json.dumps(payload).encode())
        else:
            style = "anthropic" if path.startswith("/v1/messages") else "openai"
            self._fail(handler, style, HttpError(404 if protocol is None else 400, f"fake: cannot serve {path}"))

    def _sleep(self, delay_ms: float) -> None:
        delay = delay_ms or self.latency_ms
        if delay:
            time.sleep(delay / 1000)

    def _answer_chat(self, handler: _Handler, chat: Conversation, item: ScriptItem) -> None:
        if not isinstance(item, Reply):
            self._fail(handler, chat.protocol, item)
            return
        self._sleep(item.delay_ms)
        if chat.protocol == "anthropic":
            if chat.stream:
                handler.send_bytes(200, protocols.anthropic_stream(item, chat), "text/event-stream")
            else:
                handler.send_bytes(200, json.dumps(protocols.anthropic_message(item, chat)).encode())
        elif chat.stream:
            handler.send_bytes(200, protocols.openai_stream(item, chat), "text/event-stream")
        else:
            handler.send_bytes(200, json.dumps(protocols.openai_completion(item, chat)).encode())

    def _fail(self, handler: _Handler, protocol: str, item: HttpError | Disconnect) -> None:
        self._sleep(item.delay_ms)
        if isinstance(item, Disconnect):
            handler.drop()
            return
        render = protocols.anthropic_error if protocol == "anthropic" else protocols.openai_error
        headers = {"retry-after": f"{item.retry_after:g}"} if item.retry_after is not None else {}
        # Tell the SDKs not to retry on their own (ours are disabled anyway, but other callers
        # of the fake, like a benchmark baseline, should see each scripted error exactly once).
        headers["x-should-retry"] = "false"
        handler.send_bytes(item.status, json.dumps(render(item)).encode(), headers=headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Do not join connection threads on close: keep-alive clients may hold them open forever.
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 4096
    fake: FakeLLMServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or hung up before a scripted delay ended is expected here.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # TCP_NODELAY: small responses must not wait 40 ms for an ACK
    server: _Server

    def setup(self) -> None:
        super().setup()
        fake = self.server.fake
        with fake._lock:
            fake.connection_count += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would cost more than the request

    def do_GET(self) -> None:
        if self.path == "/health":
            self.send_bytes(200, b'{"ok":true}')
        elif self.path == "/_fake/stats":
            fake = self.server.fake
            self.send_bytes(
                200,
                json.dumps(
                    {"requests": fake.request_count, "connections": fake.connection_count, "pending": fake.pending}
                ).encode(),
            )
        else:
            self.send_bytes(404, b'{"error":{"message":"not found"}}')

    def do_POST(self) -> None:
        length = self.headers.get("content-length")
        if length is None:
            self.send_bytes(411, b'{"error":{"message":"content-length required"}}')
            return
        raw = self.rfile.read(int(length))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.server.fake.handle(self, body)

    def send_bytes(
        self, status: int, payload: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        reason = _REASONS.get(status) or self.responses.get(status, ("Error",))[0]
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(payload)}",
            "x-request-id: fake",
        ]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if self.close_connection:
            lines.append("Connection: close")
        # One write for head and body: with TCP_NODELAY two writes would be two packets.
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)

    def drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def serve_until_stopped(server: FakeLLMServer, label: str) -> None:
    """Serve until SIGTERM or Ctrl-C (the bench stops its processes with SIGTERM)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    print(f"{label} on {server.url} (latency {server.latency_ms:g} ms)", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI/Anthropic/Groq server for tests and benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0, help="delay before every answer (default 0)")
    parser.add_argument("--embedding-dimensions", type=int, default=1536)
    parser.add_argument("--record", action="store_true", help="keep a log of requests (grows without bound)")
    args = parser.parse_args(argv)
    server = FakeLLMServer(
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        record=args.record,
        embedding_dimensions=args.embedding_dimensions,
    )
    serve_until_stopped(server, "fake LLM listening")


if __name__ == "__main__":
    main()
