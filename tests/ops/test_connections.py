"""``make run`` under a burst of API traffic keeps its database connections bounded.

Under ASGI every request runs in a thread of its own, so persistent connections
(``CONN_MAX_AGE``) left one open connection behind per request thread until PostgreSQL
refused new clients and the API answered 503. The web process now takes its connections
from psycopg's pool; this runs ``make run`` as shipped, fires a few hundred requests at
once (runs started and waited for, lists, approve/deny races) and samples
``pg_stat_activity`` all along.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings
from django.db import connection

from accounts.services import api_token_create
from config import serve as serve_module
from executions.services import execution_start
from tests import processes
from tests.approvals.helpers import pending_approvals
from tests.ops.test_serve import _child_named, _free_port, _healthy, _start
from tests.processes import wait_for
from tests.tools.fixtures import synced_tools  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(autouse=True)
def _drop_queued_runs():
    yield
    # Runs queued where no worker of this test picks them up: leave no messages behind.
    from redis import Redis

    Redis.from_url(settings.CELERY_BROKER_URL).delete("io", "default")


EXECUTES = 120  # half of them wait up to 5 s for the answer, as the tour does
LISTS = 100
RACED_APPROVALS = 50  # each approved and denied at once: 100 requests


class Sampler:
    """Counts this database's server connections every 10 ms: the peak per application
    name, and the peak of all Agentry processes together (they name themselves)."""

    def __init__(self, exclude: set[int]):
        self.exclude = exclude
        self.peak_by_app: Counter = Counter()
        self.peak_total = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(processes.test_database_url(), autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT pid, application_name FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
                by_app = Counter(app for pid, app in rows if pid not in self.exclude)
                for app, count in by_app.items():
                    self.peak_by_app[app] = max(self.peak_by_app[app], count)
                ours = sum(count for app, count in by_app.items() if app.startswith("agentry-"))
                self.peak_total = max(self.peak_total, ours)
                self.samples += 1
                time.sleep(0.01)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _burst(
    url: str, token: str, agent_id: str, approval_ids: list[str], seconds: list[float]
) -> list[tuple[str, int]]:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:

        async def call(kind: str, method: str, path: str, body: dict | None = None) -> tuple[str, int]:
            started = time.monotonic()
            response = await client.request(method, path, json=body)
            if not (body or {}).get("wait"):
                seconds.append(time.monotonic() - started)
            return kind, response.status_code

        jobs = []
        for i in range(EXECUTES):
            body = {"task": f"burst {i}", **({"wait": 5} if i % 2 else {})}
            jobs.append(call("execute", "POST", f"/api/v1/agents/{agent_id}/execute/", body))
        lists = [
            "/api/v1/executions/",
            "/api/v1/agents/",
            "/api/v1/approvals/",
            f"/api/v1/agents/{agent_id}/executions/",
        ]
        jobs += [call("list", "GET", lists[i % len(lists)]) for i in range(LISTS)]
        for approval_id in approval_ids:
            jobs.append(call("approve", "POST", f"/api/v1/approvals/{approval_id}/approve/", {"note": "race"}))
            jobs.append(call("deny", "POST", f"/api/v1/approvals/{approval_id}/deny/", {"note": "race"}))
        return await asyncio.gather(*jobs)


@pytest.mark.usefixtures("synced_tools")
def test_a_burst_of_requests_stays_within_the_connection_budget(
    tmp_path: Path, org, alice, make_agent, report_line, monkeypatch
):
    agent = make_agent(
        name="Burst",
        model_config={"provider": "sandbox", "model": "sandbox-echo"},
        limits={"max_runs_per_hour": 10_000},
        allowed_tools=["email_send"],
    )
    approvals = pending_approvals(agent, org, RACED_APPROVALS)
    _, token = api_token_create(user=alice, organization=org)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_setting('max_connections')::int")
        own_pid, max_connections = cursor.fetchone()

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    serve = _start(port, log)
    try:
        wait_for(lambda: _healthy(url) or serve.poll() is not None, 120, message="make run up")
        assert serve.poll() is None, log.read_text()[-3000:]
        web = _child_named(serve.pid, "web")
        assert web, log.read_text()[-3000:]
        cpu_before = _cpu_seconds(web)
        with Sampler(exclude={own_pid}) as sampler:
            started = time.monotonic()
            seconds: list[float] = []
            results = asyncio.run(_burst(url, token, str(agent.pk), [str(a.pk) for a in approvals], seconds))
            elapsed = time.monotonic() - started
        web_cpu = _cpu_seconds(web) - cpu_before
        outcomes = Counter(results)
        serve.send_signal(signal.SIGINT)
        assert serve.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()

    monkeypatch.setenv("WORKER_CONCURRENCY", "2")  # as _start runs make run
    monkeypatch.setenv("WORKER_PROCESSES", "1")
    budget = serve_module.connection_budget()
    report_line(
        f"H5 burst: {len(results)} concurrent requests in {elapsed:.1f}s (those not waiting for a run: median "
        f"{statistics.median(seconds):.2f}s, slowest {max(seconds):.2f}s; web CPU {web_cpu:.1f}s); peak connections "
        f"{dict(sampler.peak_by_app)} (total {sampler.peak_total}, {sampler.samples} samples; "
        f"budget {budget}, server max_connections {max_connections})"
    )
    assert not [r for r in results if r[1] == 503], outcomes
    assert {status for kind, status in results if kind == "execute"} <= {200, 202}, outcomes
    assert {status for kind, status in results if kind == "list"} == {200}, outcomes
    decisions = Counter(status for kind, status in results if kind in ("approve", "deny"))
    assert decisions == {200: RACED_APPROVALS, 409: RACED_APPROVALS}, outcomes
    assert sampler.samples > 20
    # Each process of make run stays within what make run says it may hold; the web
    # process, the one that leaked, at its pool's size.
    assert 0 < sampler.peak_by_app["agentry-web"] <= budget["web"], sampler.peak_by_app
    for name in ("worker", "beat"):
        assert sampler.peak_by_app[f"agentry-{name}"] <= budget[name], sampler.peak_by_app
    assert sampler.peak_total <= sum(budget.values()) < max_connections, (sampler.peak_total, sampler.peak_by_app)


async def _hold_and_probe(url: str, token: str, agent_id: str, execution_id: str) -> tuple[list[int], list[int]]:
    """Open event streams and waiting executes, then ask for lists while they hang."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, limits=limits) as client:
        opened: list[int] = []
        release = asyncio.Event()

        async def stream() -> None:
            async with client.stream("GET", f"/api/v1/executions/{execution_id}/stream/") as response:
                opened.append(response.status_code)
                await release.wait()

        holders = [asyncio.create_task(stream()) for _ in range(HELD)]
        waits = [
            asyncio.create_task(
                client.post(f"/api/v1/agents/{agent_id}/execute/", json={"task": f"hold {i}", "wait": HOLD_SECONDS})
            )
            for i in range(HELD)
        ]
        deadline = time.monotonic() + HOLD_SECONDS
        while len(opened) < HELD and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the waiting executes are in their polling loop by now
        probes = await asyncio.gather(*(client.get("/api/v1/executions/") for _ in range(10)))
        release.set()
        await asyncio.gather(*holders)
        waited = await asyncio.gather(*waits)
        return opened, [r.status_code for r in probes] + [r.status_code for r in waited]


HELD = 4
HOLD_SECONDS = 6


def test_waiting_requests_and_event_streams_do_not_hold_pooled_connections(org, alice, make_agent, report_line):
    """A web process with a pool of two: four open event streams and four executes waiting
    for their answer (no worker runs them) hold none of its connections, so other requests
    are answered at once instead of waiting for the pool and failing with 503."""
    agent = make_agent(name="Holder", model_config={"provider": "sandbox", "model": "sandbox-echo"})
    _, token = api_token_create(user=alice, organization=org)
    execution, _ = execution_start(agent=agent, organization=org, task="never picked up")  # no worker runs it
    env = {"DB_POOL_MAX_SIZE": "2", "DB_POOL_TIMEOUT": "3", "PGAPPNAME": "agentry-web-held"}
    with processes.asgi_server(env) as url, Sampler(exclude=set()) as sampler:
        started = time.monotonic()
        opened, statuses = asyncio.run(_hold_and_probe(url, token, str(agent.pk), str(execution.pk)))
        elapsed = time.monotonic() - started
    report_line(
        f"H5 held: streams {opened}, probes and waits {statuses} in {elapsed:.1f}s, peak {dict(sampler.peak_by_app)}"
    )
    assert opened == [200] * HELD
    assert statuses == [200] * 10 + [202] * HELD
    assert sampler.peak_by_app["agentry-web-held"] <= 2
