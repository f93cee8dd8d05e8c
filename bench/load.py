"""A small load client: HTTP/1.1 keep-alive over asyncio streams, loopback only.

Why not httpx or locust: on 2 cores the client shares the CPU with the servers it measures,
so it must cost as little as possible per request. This one writes a prepared request and
parses only the status line, ``Content-Length`` or chunked framing — a few tens of
microseconds a request — and keeps one TCP connection (TCP_NODELAY) per concurrent client.

``closed_loop`` runs N clients that each send their next request as soon as the previous
answered, bounded by a request count and a wall-clock limit, and returns every request's
start, latency and status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
IDLE_REOPEN_SECONDS = 4.0


class HttpError(Exception):
    pass


@dataclass
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection; ``request`` may be awaited again once it returned."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.hostname not in LOOPBACK:
            raise ValueError(f"the load client only talks to loopback servers, not {parts.hostname!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=2**22)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.writer = self.reader = None

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        if self.writer is not None and time.monotonic() - self.last_used > IDLE_REOPEN_SECONDS:
            # uvicorn closes keep-alive connections idle for 5 s; do not race it.
            await self.close()
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        payload = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(payload)}"]
        if payload:
            lines.append("Content-Type: application/json")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            raise HttpError(f"connection closed by {self.host}:{self.port}") from exc
        status_line, _, rest = head.decode("latin-1").partition("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields = {}
        for line in rest.split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            data = await self.reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            data = await self._chunked()
        else:  # no framing: the body runs until the server closes
            data = await self.reader.read()
            await self.close()
            return Response(status, data)
        if fields.get("connection", "").lower() == "close":
            await self.close()
        self.last_used = time.monotonic()
        return Response(status, data)

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # the empty trailer
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


@dataclass
class Sample:
    client: int
    started: float  # time.perf_counter()
    latency_ms: float
    status: int  # 0: transport error
    data: Any = None


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if 200 <= s.status < 300]

    @property
    def errors(self) -> int:
        return len(self.samples) - len(self.ok)

    @property
    def rate(self) -> float:
        return len(self.ok) / self.elapsed_s if self.elapsed_s else 0.0

    def latencies(self) -> list[float]:
        return [s.latency_ms for s in self.ok]


# One request of one client: (connection, client index, request index) -> (status, data kept).
Step = Callable[[Connection, int, int], Awaitable[tuple[int, Any]]]


async def closed_loop(
    url: str,
    step: Step,
    *,
    clients: int,
    total: int | None = None,
    seconds: float | None = None,
    warmup: int = 0,
) -> LoadResult:
    """``clients`` connections each running ``step`` back to back until ``total`` requests
    were sent (over all clients) or ``seconds`` passed; ``warmup`` requests per client first,
    not recorded."""
    if total is None and seconds is None:
        raise ValueError("give a total, a duration or both")
    result = LoadResult()
    counter = iter(range(total if total is not None else 1 << 62))
    deadline = [float("inf")]
    ready, warm = asyncio.Event(), asyncio.Event()
    warmed = [0]

    async def client(index: int) -> None:
        connection = Connection(url)
        try:
            try:
                for w in range(warmup):
                    await step(connection, index, -1 - w)
            finally:
                warmed[0] += 1
                if warmed[0] == clients:
                    warm.set()
            await ready.wait()
            for number in counter:
                if time.perf_counter() >= deadline[0]:
                    break
                started = time.perf_counter()
                try:
                    status, data = await step(connection, index, number)
                except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
                    status, data = 0, repr(exc)
                    await connection.close()
                result.samples.append(Sample(index, started, (time.perf_counter() - started) * 1000, status, data))
        finally:
            await connection.close()

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    # Every client has opened its connection and warmed up before the clock starts.
    await warm.wait()
    started = time.perf_counter()
    if seconds is not None:
        deadline[0] = started + seconds
    ready.set()
    await asyncio.gather(*tasks)
    result.elapsed_s = time.perf_counter() - started
    return result


def simple_step(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Step:
    async def step(connection: Connection, client: int, number: int) -> tuple[int, Any]:
        response = await connection.request(method, path, body, headers)
        return response.status, None

    return step


def run(coro: Awaitable[Any]) -> Any:
    """asyncio.run with uvloop when it is installed (uvicorn[standard] brings it)."""
    try:
        import uvloop  # noqa: PLC0415  (optional dependency: its absence is handled (ImportError) where it is used)
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]
