"""The platform's MCP client: synchronous calls over the SDK's asyncio sessions.

The runtime (Celery's threads pool), the sync service and the API are synchronous; the
official ``mcp`` SDK is asyncio. One event loop runs in a daemon thread per process (started
on first use; a forked child starts its own) and owns every session:

- Sessions are pooled per ``Endpoint``: the server, how it is reached (URL or command),
  its credentials and the row's version. A changed server gets new sessions; unused ones
  close after ``IDLE_SECONDS``. Concurrent calls share a session (JSON-RPC correlates them).
- Each session is owned by one task for its whole life (anyio's scopes must be left by the
  task that entered them); callers' coroutines only send on it.
- A session that broke (the transport failed, the server forgot it: "Session not found") is
  dropped and the next call opens another. A call the server provably never received
  (connecting failed, it did not know the session) is sent once more on a new session; a
  call cut off mid-way is sent again only when ``retry_safe`` (an idempotent tool), else the
  caller hears that it may or may not have run.
- ``notifications/tools/list_changed`` (2025-era sessions) and the ``subscriptions/listen``
  event (2026-07-28 servers) call ``on_tools_changed(server_id)`` in a worker thread.
- Every failure is an ``McpError`` whose message is short and fit for the model and the log
  (never a header value: the transport's messages name no headers).

The protocol version is negotiated as the SDK's ``mode="auto"`` does, newest first
(``server/discover``, then the ``initialize`` handshake), with the session's public methods.
The SDK's own check of structured results against a tool's output schema is replaced by the
platform's bounded evaluator (``tools.mcp.results``): a server's schema is tenant-written.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import listen
from mcp.shared.exceptions import MCPError
from mcp_types.version import LATEST_MODERN_VERSION, MODERN_PROTOCOL_VERSIONS

from config.call_count import count_call
from config.guarded_http import EndpointGuard, EndpointRefused, guarded_async_http_client

logger = logging.getLogger(__name__)

T = TypeVar("T")

IDLE_SECONDS = 300.0
MAX_SESSIONS = 64  # per process; the least recently used idle one goes first
CONNECT_SECONDS = 15.0
MAX_PAGES = 50  # tools/list pages followed before a listing is called truncated
SSE_READ_SECONDS = 300.0
CLIENT_INFO = types.Implementation(name="agentry", version="1.0")
# JSON-RPC codes that mean the server did not take the request in (a forgotten session).
_UNKNOWN_SESSION = ("session not found", "session terminated")


class McpError(Exception):
    """A call or listing failed; the message is for the model and the log."""

    def __init__(self, message: str, *, unsent: bool = False, answered: bool = False, late: bool = False) -> None:
        super().__init__(message)
        self.unsent = unsent  # the server never received it: sending again is safe
        self.answered = answered  # the server answered (with a protocol error): the session is fine
        self.late = late  # out of time: this call is over, the session may serve others

    @property
    def session_broken(self) -> bool:
        return not (self.answered or self.late)


@dataclass(frozen=True)
class Endpoint:
    """How to reach one MCP server (what sessions are pooled on)."""

    server_id: str
    name: str
    transport: str  # streamable_http, sse, stdio
    url: str = ""
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    command: str = ""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    version: str = ""  # the row's updated_at: an edited server gets new sessions
    guard: EndpointGuard | None = field(default=None, compare=False, repr=False)


class _Session(ClientSession):
    async def validate_tool_result(self, name: str, result: types.CallToolResult) -> None:
        # The platform checks structured content itself, with a bounded evaluator and the
        # schema its sync vetted (tools.mcp.results); the SDK's would run a tenant's regular
        # expressions on Python's backtracking engine, and list tools again for every call.
        return None


async def _negotiate(session: ClientSession) -> None:
    """Newest protocol first: ``server/discover`` (2026-07-28), else the 2025 handshake."""
    try:
        raw = await session.send_discover(LATEST_MODERN_VERSION)
    except MCPError:
        await session.initialize()  # a 2025-era server: it does not know discover
        return
    try:
        result = types.DiscoverResult.model_validate(raw)
    except ValueError:
        await session.initialize()
        return
    if not any(v in result.supported_versions for v in MODERN_PROTOCOL_VERSIONS):
        await session.initialize()
        return
    session.adopt(result)


@asynccontextmanager
async def _open(endpoint: Endpoint, on_message: Any, http_errors: list[int]) -> AsyncIterator[ClientSession]:
    """A negotiated session; ``http_errors`` collects the HTTP statuses >= 400 it meets (the
    SDK reports them as a generic protocol error, the status is what a person needs)."""

    async def note_status(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            http_errors.append(response.status_code)

    hooks = {"response": [note_status]}
    async with AsyncExitStack() as stack:
        headers = dict(endpoint.headers)
        if endpoint.transport == "stdio":
            params = StdioServerParameters(
                command=endpoint.command, args=list(endpoint.args), env=dict(endpoint.env) or None
            )
            with open(os.devnull, "w") as devnull:  # noqa: PTH123 - the server's stderr goes nowhere
                read, write = await stack.enter_async_context(stdio_client(params, errlog=devnull))
        else:
            if endpoint.guard is None:
                raise McpError("No SSRF guard for a network MCP server.", unsent=True)
            guard = endpoint.guard
            timeout = httpx2.Timeout(CONNECT_SECONDS, read=SSE_READ_SECONDS)
            limits = httpx2.Limits(max_connections=20, max_keepalive_connections=5)
            if endpoint.transport == "sse":

                def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> httpx2.AsyncClient:
                    return guarded_async_http_client(
                        guard=guard, limits=limits, timeout=timeout, headers=headers, event_hooks=hooks
                    )

                read, write = await stack.enter_async_context(
                    sse_client(
                        endpoint.url,
                        headers=headers,
                        timeout=CONNECT_SECONDS,
                        sse_read_timeout=SSE_READ_SECONDS,
                        httpx_client_factory=factory,
                    )
                )
            else:
                http = guarded_async_http_client(
                    guard=guard, limits=limits, timeout=timeout, headers=headers, event_hooks=hooks
                )
                await stack.enter_async_context(http)
                read, write = await stack.enter_async_context(streamable_http_client(endpoint.url, http_client=http))
        session = await stack.enter_async_context(
            _Session(read, write, message_handler=on_message, client_info=CLIENT_INFO)
        )
        with anyio.fail_after(CONNECT_SECONDS):
            await _negotiate(session)
        yield session


_STATUS_HINTS = {401: "the credentials were refused", 403: "access was refused", 404: "no MCP endpoint there"}


def describe(exc: BaseException, endpoint: Endpoint, http_status: int | None = None) -> McpError:
    """``exc`` (from the SDK, the transport or the guard) as an ``McpError``; ``http_status``:
    an error status the server answered meanwhile."""
    if isinstance(exc, McpError):
        return exc
    forgotten = isinstance(exc, MCPError) and any(p in str(exc.error.message).lower() for p in _UNKNOWN_SESSION)
    if http_status is not None and not forgotten and not isinstance(exc, EndpointRefused | TimeoutError):
        hint = _STATUS_HINTS.get(http_status, "an HTTP error")
        # The request was refused before it reached a tool: sending it again is safe.
        return McpError(f"MCP server {endpoint.name!r} answered HTTP {http_status}: {hint}.", unsent=True)
    if isinstance(exc, BaseExceptionGroup):
        leaves = [
            e for e in _leaves(exc) if not isinstance(e, asyncio.CancelledError | anyio.get_cancelled_exc_class())
        ]
        if leaves:
            return describe(leaves[0], endpoint)
    where = f"MCP server {endpoint.name!r}"
    if isinstance(exc, EndpointRefused):
        return McpError(f"{where} may not be reached: {exc}", unsent=True)
    if isinstance(exc, MCPError):
        text = str(exc.error.message)[:300]
        if any(phrase in text.lower() for phrase in _UNKNOWN_SESSION):
            return McpError(f"{where} no longer knows this session.", unsent=True)
        if exc.error.code == types.CONNECTION_CLOSED:
            return McpError(f"The connection to {where} broke: {text}")
        if exc.error.code == types.REQUEST_TIMEOUT:
            return McpError(f"{where} did not answer in time.", late=True)
        return McpError(f"{where} answered with an error ({exc.error.code}): {text}", answered=True)
    if isinstance(exc, TimeoutError):
        return McpError(f"{where} did not answer in time.", late=True)
    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | ConnectionError | FileNotFoundError | OSError):
        return McpError(f"Could not connect to {where}: {type(exc).__name__}.", unsent=True)
    if isinstance(exc, httpx2.HTTPStatusError):
        return McpError(f"{where} refused the connection: HTTP {exc.response.status_code}.", unsent=True)
    if isinstance(exc, httpx2.HTTPError):
        return McpError(f"The connection to {where} failed: {type(exc).__name__}.")
    return McpError(f"{where} failed: {type(exc).__name__}.")


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


class _Connection:
    """One session, owned by its own task from open to close."""

    def __init__(self, endpoint: Endpoint, pool: McpPool) -> None:
        self.endpoint = endpoint
        self.pool = pool
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[ClientSession] = loop.create_future()
        self.stop = asyncio.Event()
        self.broken = False
        self.users = 0
        self.last_used = time.monotonic()
        self.http_errors: list[int] = []
        self.task = loop.create_task(self._own(), name=f"mcp:{endpoint.name}")

    def describe(self, exc: BaseException, seen_before: int = 0) -> McpError:
        statuses = self.http_errors[seen_before:]
        return describe(exc, self.endpoint, statuses[-1] if statuses else None)

    async def _own(self) -> None:
        try:
            async with _open(self.endpoint, self._on_message, self.http_errors) as session:
                self.ready.set_result(session)
                async with anyio.create_task_group() as group:
                    if self._listens(session):
                        group.start_soon(self._listen, session)
                    await self.stop.wait()
                    group.cancel_scope.cancel()
        except BaseException as exc:
            error = self.describe(exc)
            if not self.ready.done():
                self.ready.set_exception(error)
            elif not self.stop.is_set():
                logger.info("MCP session to %s ended: %s", self.endpoint.name, error)
        finally:
            self.broken = True
            if not self.ready.done():
                self.ready.set_exception(McpError(f"MCP server {self.endpoint.name!r} closed.", unsent=True))

    @staticmethod
    def _listens(session: ClientSession) -> bool:
        capabilities = session.server_capabilities
        return bool(
            session.protocol_version in MODERN_PROTOCOL_VERSIONS
            and capabilities is not None
            and capabilities.tools is not None
            and capabilities.tools.list_changed
        )

    async def _listen(self, session: ClientSession) -> None:
        with contextlib.suppress(Exception):
            async with listen(session, tools_list_changed=True) as subscription:
                async for _event in subscription:
                    self.pool.tools_changed(self.endpoint.server_id)

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.pool.tools_changed(self.endpoint.server_id)
        elif isinstance(message, Exception):
            # The transport failed under the session: the next call opens another.
            logger.info("MCP session to %s failed: %s", self.endpoint.name, type(message).__name__)
            self.broken = True

    def close(self) -> None:
        self.broken = True
        self.stop.set()


class McpPool:
    """The process's event loop and its sessions; ``mcp_pool()`` is the one to use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._connections: dict[Endpoint, _Connection] = {}  # touched in the loop only
        self.on_tools_changed: Callable[[str], None] | None = None

    # --- the loop -----------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive()
            if self._loop is None or self._pid != os.getpid() or not alive:
                # First use, or a forked child (the parent's loop thread did not come along).
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="mcp-client", daemon=True)
                thread.start()
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
                self._connections = {}
            return self._loop

    def run(self, make: Callable[[], Coroutine[Any, Any, T]], *, timeout: float) -> T:
        """Run ``make()`` on the loop and wait for it, at most ``timeout`` seconds (plus a
        little: the coroutine bounds itself, this only guards against a stuck loop)."""
        future = asyncio.run_coroutine_threadsafe(make(), self._running_loop())
        try:
            return future.result(timeout + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise McpError("The MCP client did not answer in time.") from None

    def tools_changed(self, server_id: str) -> None:
        callback = self.on_tools_changed
        if callback is not None:
            # In a worker thread: the callback writes to the database.
            asyncio.get_running_loop().run_in_executor(None, _quietly, callback, server_id)

    # --- sessions (in the loop) ---------------------------------------------------------

    async def session(self, endpoint: Endpoint) -> tuple[_Connection, ClientSession]:
        self._reap()
        connection = self._connections.get(endpoint)
        if connection is None or connection.broken:
            if connection is not None:
                connection.close()
            connection = _Connection(endpoint, self)
            self._connections[endpoint] = connection
        return connection, await asyncio.shield(connection.ready)

    def discard(self, connection: _Connection) -> None:
        connection.close()
        if self._connections.get(connection.endpoint) is connection:
            del self._connections[connection.endpoint]

    def _reap(self) -> None:
        now = time.monotonic()
        idle = sorted((c for c in self._connections.values() if c.users == 0), key=lambda c: c.last_used)
        excess = max(0, len(self._connections) - MAX_SESSIONS + 1)
        for index, connection in enumerate(idle):
            if connection.broken or now - connection.last_used > IDLE_SECONDS or index < excess:
                self.discard(connection)

    async def using(
        self,
        endpoint: Endpoint,
        work: Callable[[ClientSession], Coroutine[Any, Any, T]],
        *,
        retry_safe: bool,
        timeout: float,
    ) -> T:
        """``work(session)`` on a pooled session within ``timeout`` seconds (opening the
        session included); once more on a new session when that is safe."""
        deadline = asyncio.get_running_loop().time() + timeout
        for attempt in (1, 2):
            connection: _Connection | None = None
            seen = 0
            try:
                async with asyncio.timeout_at(deadline):
                    connection, session = await self.session(endpoint)
                    connection.users += 1
                    seen = len(connection.http_errors)
                    return await work(session)
            except Exception as exc:
                error = connection.describe(exc, seen) if connection is not None else describe(exc, endpoint)
                if connection is not None and error.session_broken:
                    self.discard(connection)
                if attempt == 1 and (error.unsent or (retry_safe and error.session_broken)):
                    logger.info("MCP %s: %s; trying a new session", endpoint.name, error)
                    continue
                raise error from None
            finally:
                if connection is not None:
                    connection.users -= 1
                    connection.last_used = time.monotonic()
        raise AssertionError("unreachable")

    def close_all(self) -> None:
        loop = self._loop
        if loop is None or self._pid != os.getpid():
            return

        async def close() -> None:
            for connection in list(self._connections.values()):
                self.discard(connection)
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(connection.task, 5)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), loop).result(10)


def _quietly(callback: Callable[[str], None], server_id: str) -> None:
    try:
        callback(server_id)
    except Exception:
        logger.warning("handling an MCP server's tools/list_changed failed", exc_info=True)


_POOL = McpPool()


def mcp_pool() -> McpPool:
    return _POOL


# --- what the platform asks of a server -----------------------------------------------------


@dataclass
class Listing:
    tools: list[types.Tool]
    truncated: bool
    protocol_version: str


def list_tools(endpoint: Endpoint, *, timeout: float, max_tools: int) -> Listing:
    """Every tool the server lists, following its pages (at most ``max_tools``)."""

    async def work(session: ClientSession) -> Listing:
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _page in range(MAX_PAGES):
            page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor or len(tools) >= max_tools:
                break
        truncated = bool(cursor) or len(tools) > max_tools
        return Listing(tools[:max_tools], truncated, session.protocol_version or "")

    pool = mcp_pool()
    return pool.run(lambda: pool.using(endpoint, work, retry_safe=True, timeout=timeout), timeout=timeout)


def call_tool(
    endpoint: Endpoint,
    *,
    name: str,
    arguments: dict[str, Any],
    meta: dict[str, Any],
    timeout: float,
    retry_safe: bool,
) -> types.CallToolResult:
    """One ``tools/call``; raises ``McpError``. ``retry_safe``: the tool may run twice."""

    request_meta = cast(Any, meta)  # RequestParamsMeta: a mapping open to extra keys like ours

    async def work(session: ClientSession) -> types.CallToolResult:
        try:
            return await session.call_tool(name, arguments, meta=request_meta)
        except MCPError as exc:
            if exc.error.code != types.HEADER_MISMATCH:
                raise
            # A 2026 server that wants the tool listed on this connection first (or whose
            # schema changed): list, then send once more, as the SDK's Client does.
            cursor = None
            for _page in range(MAX_PAGES):
                cursor = (await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))).next_cursor
                if not cursor:
                    break
            return await session.call_tool(name, arguments, meta=request_meta)

    # Counted here, in the caller's thread (the session runs on the pool's loop thread): one
    # ``tools/call`` is one call to the server, whatever its transport sends around it.
    count_call()
    pool = mcp_pool()
    return pool.run(lambda: pool.using(endpoint, work, retry_safe=retry_safe, timeout=timeout), timeout=timeout)
