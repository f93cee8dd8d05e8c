"""The web process's ASGI handler runs the middleware chain and the view in one thread hop
(config/asgi_handler.py), and answers as Django's own handler did: request id, security
and cache headers, authentication, writes, errors."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import SyncToAsync, async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler

from config.asgi_handler import SyncChainASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


async def _call(
    app: Any, method: str, path: str, token: str | None = None, body: bytes = b""
) -> tuple[int, dict, bytes]:
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 40000), "server": ("testserver", 80),
    }  # fmt: skip
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body})
    start = await communicator.receive_output(30)
    chunks = []
    while True:
        message = await communicator.receive_output(30)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await communicator.wait(30)
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, b"".join(chunks)


def _hops(monkeypatch) -> list[str]:
    """Every sync_to_async call made from here on, by the name of what it ran."""
    calls: list[str] = []
    original = SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        calls.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    return calls


def test_one_hop_for_chain_and_view_where_django_took_many(
    org, alice, make_agent, client_for, monkeypatch, report_line
):
    agent = make_agent()
    token = client_for(alice).raw_token
    ours, stock = SyncChainASGIHandler(), ASGIHandler()
    path = f"/api/v1/agents/{agent.pk}/execute/"
    calls = _hops(monkeypatch)
    status, headers, body = async_to_sync(_call)(ours, "POST", path, token, b'{"task": "go"}')
    assert status == 202, body
    ours_calls, calls[:] = list(calls), []
    status, _, body = async_to_sync(_call)(stock, "POST", path, token, b'{"task": "go"}')
    assert status == 202, body
    report_line(f"execute request under ASGI: {len(ours_calls)} thread hops (Django's handler: {len(calls)})")
    # request_started's receivers, the chain with the view, the response's close.
    assert len(ours_calls) <= 3, ours_calls
    assert len(calls) >= 2 * len(ours_calls), calls
    assert headers["x-request-id"] and "no-cache" in headers["cache-control"]


def test_answers_as_before(org, alice, client_for):
    app = SyncChainASGIHandler()
    status, headers, _ = async_to_sync(_call)(app, "GET", "/api/v1/health/")
    assert status == 200 and headers["x-request-id"]
    status, _, body = async_to_sync(_call)(app, "GET", "/api/v1/agents/", "agt_not-a-token")
    assert status == 401 and b'"InvalidToken"' in body
    token = client_for(alice).raw_token
    status, headers, body = async_to_sync(_call)(app, "GET", "/api/v1/agents/", token)
    assert status == 200 and b'"total"' in body and "no-cache" in headers["cache-control"]
    status, _, body = async_to_sync(_call)(app, "POST", "/api/v1/agents/", token, b"{not json")
    assert status == 400 and b'"error"' in body
    status, headers, _ = async_to_sync(_call)(app, "GET", "/admin/login/")
    assert status == 200 and "content-security-policy" in headers


def test_the_web_process_uses_it():
    import config.asgi

    assert isinstance(config.asgi._django, SyncChainASGIHandler)
