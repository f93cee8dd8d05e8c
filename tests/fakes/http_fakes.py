"""Local fakes of what tools call over HTTP, and a canary that must never be reached.

- ``FakeHttpServer``: a threaded HTTP server on 127.0.0.1 with an ephemeral port. Routes are
  ``(method, path) -> Route`` (status, JSON or text body, headers, delay, or a callable);
  every request is logged (method, path, headers, parsed JSON body). It plays the CRM and
  calendar modules, the SMS gateway, the search API, web pages and organizations' HTTP tools.
- ``Canary``: a bare TCP listener that counts connections. SSRF tests aim at it through every
  spelling of its address; it must see none.

    with FakeHttpServer() as fake:
        fake.route("POST", "/crm/getContact", json={"id": "c1"})
        ...
        assert fake.requests[-1].json == {"contact_id": "c1"}
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Route:
    status: int = 200
    json: Any = None
    text: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Write the body slowly: this many bytes every ``drip_interval`` seconds.
    drip_bytes: int = 0
    drip_interval: float = 0.0
    handler: Callable[[Recorded], Route] | None = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        recorded = Recorded(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        fake = self.server.fake
        with fake.lock:
            fake.requests.append(recorded)
            route = fake.routes.get((self.command, parts.path)) or fake.routes.get(("*", parts.path))
        if route is None:
            route = Route(status=404, json={"error": f"no route {self.command} {parts.path}"})
        if route.handler is not None:
            route = route.handler(recorded)
        if route.delay:
            time.sleep(route.delay)
        if route.text is not None:
            payload = route.text.encode()
            content_type = route.content_type or "text/html; charset=utf-8"
        else:
            payload = json.dumps(route.json if route.json is not None else {}).encode()
            content_type = route.content_type or "application/json"
        self.send_response(route.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in route.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if route.drip_bytes:
            for start in range(0, len(payload), route.drip_bytes):
                self.wfile.write(payload[start : start + route.drip_bytes])
                self.wfile.flush()
                time.sleep(route.drip_interval)
        else:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    fake: FakeHttpServer


class FakeHttpServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def allow_entry(self) -> str:
        """The SSRF allow-list entry that lets tools reach this server (and nothing else local)."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, method: str, path: str, **kwargs: Any) -> Route:
        route = Route(**kwargs)
        with self.lock:
            self.routes[(method, path)] = route
        return route

    def requests_to(self, path: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        with self.lock:
            self.routes.clear()
            self.requests.clear()

    def start(self) -> FakeHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeHttpServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Canary:
    """Counts every TCP connection made to it (on IPv4 loopback, and IPv6 loopback when
    the machine has it)."""

    def __init__(self) -> None:
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        v4.bind(("127.0.0.1", 0))
        self.port = v4.getsockname()[1]
        self._sockets.append(v4)
        try:
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.bind(("::1", self.port))
            self._sockets.append(v6)
        except OSError:
            pass  # no IPv6 loopback here; the IPv6 spellings are refused before any connect anyway
        self._threads = []
        for sock in self._sockets:
            sock.listen(64)
            sock.settimeout(0.1)
            thread = threading.Thread(target=self._accept, args=(sock,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _accept(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.connections += 1
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(1)
        for sock in self._sockets:
            sock.close()
