"""A real MCP server for the client tests, written with the official SDK (``mcp``).

``FakeMcpServer`` serves MCP's streamable HTTP transport on 127.0.0.1 (uvicorn in a thread of
the test process, so a Celery worker in another process reaches it like any remote server):

- tools with each annotation: ``read_note`` (readOnlyHint), ``upsert_note`` (idempotentHint),
  ``delete_note`` (destructiveHint), ``append_entry`` (none), listed three to a page;
- ``slow`` (sleeps), ``explode`` (answers ``isError``), ``broken`` (a JSON-RPC error),
  ``picture`` (an image, an embedded resource and structured content), ``grow`` (adds a tool
  and sends ``notifications/tools/list_changed``), ``whoami`` (echoes the Authorization
  header it got: the platform must redact it);
- tools the platform must refuse: ``remote_ref`` (a remote ``$ref`` in its schema) and
  ``dotted.name`` (a name no model provider accepts);
- ``restart()`` stops and starts it on the same port: every session is forgotten, as when a
  real server is redeployed (the client's next request with its old session id gets 404);
- ``required_headers``: requests without them get 401; every request's headers are recorded;
- ``hold()``: the next tool call blocks (after it was recorded) until ``release()``.

Every call is recorded with its arguments and ``_meta`` (the idempotency key rides there).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server import Server
from mcp.shared.exceptions import MCPError

PNG_1X1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()

_NOTE = {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}
_NOTE_VALUE = {
    "type": "object",
    "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
    "required": ["key", "value"],
}


def _tool(name: str, description: str, schema: dict[str, Any], **hints: Any) -> types.Tool:
    annotations = types.ToolAnnotations(**hints) if hints else None
    return types.Tool(name=name, description=description, input_schema=schema, annotations=annotations)


def default_tools() -> list[types.Tool]:
    return [
        _tool("read_note", "Read a note by key.", _NOTE, read_only_hint=True, title="Read a note"),
        _tool("upsert_note", "Create or replace a note.", _NOTE_VALUE, idempotent_hint=True, destructive_hint=False),
        _tool("delete_note", "Delete a note for good.", _NOTE, destructive_hint=True),
        _tool("append_entry", "Append an entry to the journal.", _NOTE_VALUE),
        _tool(
            "slow",
            "Wait a while, then answer.",
            {"type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"]},
            read_only_hint=True,
        ),
        _tool("explode", "Always fails.", {"type": "object", "properties": {}}),
        _tool("broken", "Answers with a protocol error.", {"type": "object", "properties": {}}),
        _tool("picture", "A picture and a document.", {"type": "object", "properties": {}}, read_only_hint=True),
        _tool("grow", "Adds the tool 'extra' to this server.", {"type": "object", "properties": {}}),
        _tool("whoami", "Says which credentials it was called with.", {"type": "object", "properties": {}}),
        _tool(
            "remote_ref",
            "Its schema points elsewhere.",
            {"type": "object", "properties": {"x": {"$ref": "https://example.com/schema.json"}}},
        ),
        _tool("dotted.name", "A name providers refuse.", {"type": "object", "properties": {}}),
    ]


@dataclass
class McpCall:
    name: str
    arguments: dict[str, Any]
    meta: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


async def _reply(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # as a client that keeps the connection open
        return {"type": "http.disconnect"}

    return receive


class FakeMcpServer:
    def __init__(
        self, *, page_size: int = 3, required_headers: dict[str, str] | None = None, legacy: bool = True
    ) -> None:
        # legacy: speak only the 2025 handshake (sessions, list_changed on the session's
        # streams), as most servers still do; else the 2026-07-28 stateless protocol too.
        self.legacy = legacy
        self.page_size = page_size
        self.required_headers = dict(required_headers or {})
        self.tools: list[types.Tool] = default_tools()
        self.calls: list[McpCall] = []
        self.list_requests = 0
        self.methods: list[str] = []  # of every JSON-RPC message posted
        self.request_headers: list[dict[str, str]] = []
        self.notes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._hold = threading.Event()
        self._held = threading.Event()
        self._release = threading.Event()
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- the MCP server ----------------------------------------------------------------

    def _app(self) -> Any:
        async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
            with self._lock:
                self.list_requests += 1
            start = int(params.cursor) if params is not None and params.cursor else 0
            page = self.tools[start : start + self.page_size]
            more = start + self.page_size < len(self.tools)
            return types.ListToolsResult(tools=page, next_cursor=str(start + self.page_size) if more else None)

        async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
            meta = dict(params.meta or {})
            arguments = dict(params.arguments or {})
            with self._lock:
                self.calls.append(McpCall(params.name, arguments, meta))
            if self._hold.is_set():
                self._hold.clear()
                self._held.set()
                await asyncio.to_thread(self._release.wait, 60)
            return await self._answer(ctx, params.name, arguments)

        server: Server[Any] = Server(
            "agentry-test-notes", version="1.0", on_list_tools=list_tools, on_call_tool=call_tool
        )
        app = server.streamable_http_app(streamable_http_path="/mcp")
        return self._recording(app)

    async def _answer(self, ctx: Any, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        def text(value: str) -> list[types.ContentBlock]:
            return [types.TextContent(type="text", text=value)]

        if name == "read_note":
            value = self.notes.get(arguments["key"], "")
            return types.CallToolResult(
                content=text(value), structured_content={"key": arguments["key"], "value": value}
            )
        if name in ("upsert_note", "append_entry"):
            self.notes[arguments["key"]] = arguments["value"]
            return types.CallToolResult(content=text(f"saved {arguments['key']}"))
        if name == "delete_note":
            self.notes.pop(arguments["key"], None)
            return types.CallToolResult(content=text(f"deleted {arguments['key']}"))
        if name == "slow":
            await asyncio.sleep(float(arguments["seconds"]))
            return types.CallToolResult(content=text("finally"))
        if name == "explode":
            return types.CallToolResult(content=text("the journal is on fire"), is_error=True)
        if name == "broken":
            raise MCPError(code=types.INTERNAL_ERROR, message="the database is gone")
        if name == "picture":
            return types.CallToolResult(
                content=[
                    types.TextContent(type="text", text="Here is the chart."),
                    types.ImageContent(type="image", data=PNG_1X1, mime_type="image/png"),
                    types.EmbeddedResource(
                        type="resource",
                        resource=types.TextResourceContents(
                            uri="notes://report", mime_type="text/plain", text="R" * 50_000
                        ),
                    ),
                ],
                structured_content={"rows": 3},
            )
        if name == "whoami":
            request = getattr(ctx, "request", None)
            seen = request.headers.get("authorization", "") if request is not None else ""
            return types.CallToolResult(content=text(f"You called with {seen}"))
        if name == "grow":
            if all(t.name != "extra" for t in self.tools):
                self.tools.append(
                    _tool("extra", "Added later.", {"type": "object", "properties": {}}, read_only_hint=True)
                )
            with contextlib.suppress(Exception):
                await ctx.session.send_tool_list_changed()
            return types.CallToolResult(content=text("grown"))
        return types.CallToolResult(content=text(f"no tool {name}"), is_error=True)

    def _recording(self, app: Any) -> Any:
        async def wrapped(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
                with self._lock:
                    self.request_headers.append(headers)
                if any(headers.get(k.lower()) != v for k, v in self.required_headers.items()):
                    await _reply(send, 401, b"unauthorized", b"text/plain")
                    return
                if scope["method"] == "POST":
                    body = await _body(receive)
                    with contextlib.suppress(ValueError, AttributeError):
                        message = json.loads(body)
                        with self._lock:
                            self.methods.append(str(message.get("method")))
                        if self.legacy and message.get("method") == "server/discover":
                            # A 2025-era server: no discover, so the client falls back to the
                            # initialize handshake and gets a session id.
                            error = {"code": types.METHOD_NOT_FOUND, "message": "Method not found"}
                            answer = {"jsonrpc": "2.0", "id": message.get("id"), "error": error}
                            await _reply(send, 200, json.dumps(answer).encode(), b"application/json")
                            return
                    receive = _replay(body)
            await app(scope, receive, send)

        return wrapped

    # --- controls ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def allow_entry(self) -> str:
        return f"127.0.0.1:{self.port}"

    def calls_of(self, name: str) -> list[McpCall]:
        with self._lock:
            return [c for c in self.calls if c.name == name]

    def hold(self) -> None:
        """The next tool call blocks (after being recorded) until ``release``."""
        self._release.clear()
        self._held.clear()
        self._hold.set()

    def wait_held(self, timeout: float = 30) -> bool:
        return self._held.wait(timeout)

    def release(self) -> None:
        self._release.set()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.request_headers.clear()
            self.methods.clear()
            self.list_requests = 0
        self.tools = default_tools()
        self.notes.clear()
        self.required_headers = {}
        self.page_size = 3
        self._hold.clear()
        self._release.set()

    def start(self) -> FakeMcpServer:
        # A new socket each time (uvicorn closes the one it served on), on the same port.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(256)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        sock = self._sock
        self._thread = threading.Thread(target=lambda: self._server.run(sockets=[sock]), daemon=True)  # type: ignore[union-attr]
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def restart(self) -> None:
        """Stop and start again on the same port: every session is gone."""
        self.stop()
        self.start()

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = None
        self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
