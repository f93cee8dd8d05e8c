"""The hand-kept Python client: against the real API (in-process through WSGI), its event
stream against scripted answers, and its package built and installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.test import Client

from executions.runtime.loop import run_execution

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
from agentry_client import AgentryClient, AgentryError, Event
from agentry_client.sse import EventParser

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"

pytestmark = pytest.mark.django_db


def _through_django_test_client(request: httpx.Request) -> httpx.Response:
    # Not httpx.WSGITransport: Django's request_finished signal would close the test's
    # database connection (the test client disconnects it); same app, same middleware.
    extra = {
        f"HTTP_{k.upper().replace('-', '_')}": v for k, v in request.headers.items() if k.lower() != "content-type"
    }
    response = Client().generic(
        request.method,
        request.url.raw_path.decode(),
        data=request.content,
        content_type=request.headers.get("content-type", "application/octet-stream"),
        **extra,
    )
    return httpx.Response(response.status_code, headers=dict(response.items()), content=response.content)


@pytest.fixture
def api(alice, client_for):
    raw = client_for(alice).raw_token
    transport = httpx.MockTransport(_through_django_test_client)
    client = AgentryClient("http://testserver", token=raw, transport=transport)
    yield client
    client.close()


def test_create_publish_execute_and_read_back(api, org):
    agent = api.create_agent(
        {
            "name": "Client-made",
            "system_prompt": "Be brief.",
            "model_config": {"provider": "sandbox", "model": "sandbox-echo"},
        }
    )
    api.publish_agent(agent["id"], changelog="first")
    assert agent["id"] in [a["id"] for a in api.list_agents()["results"]]

    run = api.execute_agent(agent["id"], "Say hello")
    assert run["status"] == "pending"
    run_execution(run["id"])  # the worker's part, in this process
    done = api.wait_for_execution(run["id"], timeout=5, interval=0.1)
    assert done["status"] == "completed"
    assert api.list_steps(run["id"])["total"] >= 2


def test_errors_carry_the_error_shape(api):
    with pytest.raises(AgentryError) as caught:
        api.get_agent("00000000-0000-0000-0000-000000000000")
    error = caught.value
    assert error.status == 404 and error.code in ("NotFound", "AgentNotFound")
    assert error.request_id
    with pytest.raises(AgentryError) as caught:
        api.create_agent({"name": ""})
    assert caught.value.status == 400 and caught.value.code in ("InvalidAgentConfig", "InvalidInput")


# -- stream_events, against scripted SSE answers ------------------------------------------------


def _sse(*events: tuple[int | None, str, object]) -> bytes:
    chunks = []
    for seq, name, data in events:
        head = f"id: {seq}\n" if seq is not None else ""
        chunks.append(f"{head}event: {name}\ndata: {json.dumps(data)}\n\n")
    return "".join(chunks).encode()


class ScriptedServer:
    """Answers stream requests from a list (bytes, or bytes then a dropped connection) and
    execution reads with ``status``; records the stream requests' Last-Event-ID."""

    def __init__(self, *answers: bytes | tuple[bytes, str] | httpx.Response, status: str = "running"):
        self.answers = list(answers)
        self.status = status
        self.last_event_ids: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/stream/"):
            return httpx.Response(200, json={"id": "run", "status": self.status})
        self.last_event_ids.append(request.headers.get("Last-Event-ID"))
        assert request.headers["Accept"].startswith("text/event-stream")
        answer = self.answers.pop(0)
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, tuple):
            body, _ = answer

            def dropped() -> Iterator[bytes]:
                yield body
                raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

            return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=dropped())
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=answer)


@pytest.fixture
def no_sleep(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("agentry_client.time.sleep", slept.append)
    return slept


def _scripted(server: ScriptedServer) -> AgentryClient:
    return AgentryClient("http://agentry.test", token="agt_x", transport=httpx.MockTransport(server))


def test_event_parser_follows_the_format():
    parser = EventParser()
    lines = [
        ": keep-alive", "", "retry: 2500", "id: 7", "event: think_completed", 'data: {"a":', "data: 1}", "",
        "event: note", "data:plain text", "", "id: 9", "event: empty", "", "data: [1, 2]", "unknown: x", "",
    ]  # fmt: skip
    events = [e for e in map(parser.feed, lines) if e is not None]
    assert events == [
        Event(id=7, event="think_completed", data={"a": 1}),  # data lines joined with a newline
        Event(id=None, event="note", data="plain text"),  # not JSON: the text; no id: None
        Event(id=None, event="message", data=[1, 2]),  # an event without data is never dispatched
    ]
    assert parser.retry_ms == 2500


def test_stream_resumes_after_a_drop_and_stops_at_the_terminal_event(no_sleep):
    server = ScriptedServer(
        (_sse((1, "execution_started", {}), (None, "think_token", {"text": "hi"}), (2, "step_completed", {})), "drop"),
        _sse((3, "approval_requested", {"tool": "notify_user"}), (4, "execution_completed", {"status": "completed"}))
        + _sse((5, "never_read", {})),
    )
    with _scripted(server) as client:
        events = list(client.stream_events("run"))
    assert [(e.id, e.event) for e in events] == [
        (1, "execution_started"), (None, "think_token"), (2, "step_completed"),
        (3, "approval_requested"), (4, "execution_completed"),
    ]  # fmt: skip
    assert server.last_event_ids == [None, "2"]  # the live-only token did not move the cursor
    assert events[-1].is_terminal and len(no_sleep) == 1


def test_stream_starts_after_last_event_id_and_retries_transient_answers(no_sleep):
    unavailable = httpx.Response(503, json={"error": {"code": "ServiceUnavailable", "message": "restarting"}})
    server = ScriptedServer(unavailable, _sse((6, "execution_failed", {"status": "cancelled"})))
    with _scripted(server) as client:
        assert [e.id for e in client.stream_events("run", last_event_id=5)] == [6]
    assert server.last_event_ids == ["5", "5"]


def test_stream_gives_up_after_max_retries_and_raises_api_errors_at_once(no_sleep):
    server = ScriptedServer(*[(b": keep-alive\n\n", "drop")] * 3)
    with _scripted(server) as client, pytest.raises(httpx.RemoteProtocolError):
        list(client.stream_events("run", max_retries=2))
    assert len(server.last_event_ids) == 3 and no_sleep == [1.0, 2.0]  # backoff doubles

    missing = httpx.Response(404, json={"error": {"code": "NotFound", "message": "No such execution."}})
    server = ScriptedServer(missing)
    with _scripted(server) as client, pytest.raises(AgentryError) as caught:
        list(client.stream_events("run"))
    assert caught.value.code == "NotFound" and len(server.last_event_ids) == 1


def test_stream_closed_early_for_a_finished_run_asks_once_more_then_stops(no_sleep):
    # The server may see the run over before its last events are stored: one more request
    # with Last-Event-ID gets them; a run that still has none ends the iteration.
    server = ScriptedServer(_sse((1, "execution_started", {})), _sse(), status="cancelled")
    with _scripted(server) as client:
        assert [e.id for e in client.stream_events("run")] == [1]
    assert server.last_event_ids == [None, "1"] and no_sleep == []

    server = ScriptedServer(_sse((1, "execution_started", {})), _sse((2, "execution_failed", {})), status="failed")
    with _scripted(server) as client:
        assert [e.event for e in client.stream_events("run")] == ["execution_started", "execution_failed"]


def test_approval_helpers_send_what_the_api_names():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"results": [], "total": 0, "limit": 50, "offset": 0})
        return httpx.Response(200, json={"id": "a1", "status": "approved"})

    with AgentryClient("http://agentry.test", token="agt_x", transport=httpx.MockTransport(handler)) as client:
        client.list_approvals(execution_id="e1", risk_level="high")
        client.list_approvals(status="all", agent_id="g1", limit=5)
        client.approve("a1", note="ok", params={"message": "edited"})
        client.deny("a1")
    assert [dict(r.url.params) for r in seen[:2]] == [
        {"execution": "e1", "risk_level": "high"},
        {"status": "all", "agent": "g1", "limit": "5"},
    ]
    assert [(r.url.path, json.loads(r.content)) for r in seen[2:]] == [
        ("/api/v1/approvals/a1/approve/", {"note": "ok", "params": {"message": "edited"}}),
        ("/api/v1/approvals/a1/deny/", {"note": ""}),
    ]


# -- the package ------------------------------------------------------------------------------------


def _link_installed(name: str, into: Path) -> None:
    """Symlink distribution ``name`` and those it requires, as installed here, into ``into``."""
    from importlib.metadata import PackageNotFoundError, distribution

    seen: set[str] = set()
    todo = [name]
    while todo:
        try:
            dist = distribution(todo.pop())
        except PackageNotFoundError:
            continue  # required on other Pythons only (a marker), so not installed here
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        todo += [re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0] for r in dist.requires or [] if "extra ==" not in r]
        for top in {Path(str(f)).parts[0] for f in dist.files or []} - {"..", "__pycache__"}:
            if not (into / top).exists():
                (into / top).symlink_to(Path(str(dist.locate_file(top))))


def test_the_package_builds_installs_and_ships_its_types(tmp_path):
    """The wheel from clients/python installs into a fresh virtualenv and imports there.

    The build backend (setuptools) comes from the package index, as for any `pip install`.
    httpx, the one dependency, and what it needs are this environment's copies, linked into
    a directory the new virtualenv sees through a .pth file (what --system-site-packages
    would give if they were installed system-wide): the install needs no network, and a
    copy of the client installed here cannot stand in for the wheel."""
    source = tmp_path / "src"  # a copy: an in-tree build would leave build/ and *.egg-info behind
    shutil.copytree(
        CLIENT, source, ignore=shutil.ignore_patterns("__pycache__", ".*_cache", "build", "dist", "*.egg-info")
    )
    wheels = tmp_path / "wheels"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-q", "-w", wheels, source], check=True, env=env, timeout=180)
    (wheel,) = wheels.glob("agentry_client-0.1.0-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read("agentry_client-0.1.0.dist-info/METADATA").decode()
    assert {"agentry_client/__init__.py", "agentry_client/sse.py", "agentry_client/py.typed"} <= names
    assert all(n.startswith(("agentry_client/", "agentry_client-0.1.0.dist-info/")) for n in names)
    assert [line for line in metadata.splitlines() if line.startswith("Requires-")] == [
        "Requires-Python: >=3.10",
        "Requires-Dist: httpx>=0.27",
    ]

    venv, outer = tmp_path / "venv", tmp_path / "outer-site"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, env=env, timeout=60)
    python = str(venv / "bin" / "python")
    outer.mkdir()
    _link_installed("httpx", outer)
    purelib = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    (Path(purelib.decode().strip()) / "outer-site.pth").write_text(f"{outer}\n")
    subprocess.run([*pip, "--python", python, "install", "--no-index", "-q", wheel], check=True, env=env, timeout=120)

    probe = (
        "import importlib.resources, agentry_client; "
        "print(agentry_client.__file__); "
        "print(importlib.resources.files('agentry_client').joinpath('py.typed').is_file()); "
        "print(agentry_client.AgentryClient.stream_events.__name__, agentry_client.__version__)"
    )
    where, typed, names_line = (
        subprocess.check_output([python, "-c", probe], cwd=tmp_path, env=env, text=True).strip().splitlines()
    )
    assert Path(where).is_relative_to(venv) and typed == "True" and names_line == "stream_events 0.1.0"
