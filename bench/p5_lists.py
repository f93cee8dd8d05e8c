"""P5 - list endpoints under load: 100 k executions and 10 k agents, 32 concurrent clients.

A tenant of its own (``bench-lists-<agents>-<executions>``), seeded once and reused by later
runs: one agent made through the services (created, published), cloned with bulk inserts
into ``--p5-agents`` agents with their published version, and ``--p5-executions`` finished
executions spread over them and over the last 30 days (85 % completed, 10 % failed, 5 %
cancelled), each with the version's configuration as the runtime stores it.

Then uvicorn (``--p5-web-workers`` processes) serves the API and ``--p5-clients`` keep-alive
clients, each with its own token, page through ``GET /api/v1/executions/`` and
``GET /api/v1/agents/`` (limit 50, offsets 0-450) for ``--p5-seconds`` each: p50/p95/p99 and
requests per second. Baseline, same run: one client alone on the same endpoint (the service
time of a request without queueing).

Queries per request: the same requests in this process through Django's test client, with
every query captured, at page sizes 10, 50 and 100 - the count must not grow with the page.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent, AgentVersion
from bench import data, load
from bench.cpu import CpuMeter, postmaster_pid
from bench.env import Processes, database_name, pg_connections
from bench.p3_concurrency import Sampler
from bench.report import Figure, ratio, summary
from executions.models import Execution

TARGET_P99_MS = 50.0
PAGE_SIZES = (10, 50, 100)
ENDPOINTS = {"executions": "/api/v1/executions/", "agents": "/api/v1/agents/"}
BATCH = 5000


def seed(owner: data.Tenant, *, agents: int, executions: int, log=print) -> dict[str, Any]:
    """Top the tenant up to ``agents`` agents and ``executions`` executions; returns counts."""
    organization = owner.organization
    started = time.perf_counter()
    have_agents = Agent.objects.filter(organization=organization).count()
    if have_agents < agents:
        template = Agent.objects.filter(organization=organization).first() or data.agent(owner, "List template")
        version = AgentVersion.objects.get(pk=template.current_version_id)
        skip = {"id", "name", "slug", "current_version_id", "created_at", "updated_at"}
        values = {f.attname: getattr(template, f.attname) for f in Agent._meta.concrete_fields if f.attname not in skip}
        have_agents = Agent.objects.filter(organization=organization).count()
        for low in range(have_agents, agents, BATCH):
            with transaction.atomic():
                rows, versions = [], []
                for i in range(low, min(low + BATCH, agents)):
                    agent = Agent(id=uuid.uuid4(), name=f"Listed agent {i:06d}", slug=f"listed-{i:06d}", **values)
                    rows.append(agent)
                    versions.append(
                        AgentVersion(
                            id=uuid.uuid4(),
                            agent_id=agent.id,
                            version="1.0.0",
                            major=1,
                            minor=0,
                            patch=0,
                            config=version.config,
                            created_by_id=version.created_by_id,
                            published_at=timezone.now(),
                            is_current=True,
                        )
                    )
                Agent.objects.bulk_create(rows)
                AgentVersion.objects.bulk_create(versions)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE agents_agent a SET current_version_id = v.id FROM agents_agentversion v"
                " WHERE v.agent_id = a.id AND v.is_current AND a.current_version_id IS NULL"
                " AND a.organization_id = %s",
                [organization.pk],
            )
        log(f"[P5] seeded agents up to {agents:,}")
    have_runs = Execution.objects.filter(organization=organization).count()
    if have_runs < executions:
        pairs = list(
            Agent.objects.filter(organization=organization, current_version__isnull=False).values_list(
                "id", "current_version_id"
            )
        )
        config = AgentVersion.objects.get(pk=pairs[0][1]).config
        rng = random.Random(have_runs)  # noqa: S311 - synthetic rows, not secrets
        now = timezone.now()
        for low in range(have_runs, executions, BATCH):
            rows = []
            for i in range(low, min(low + BATCH, executions)):
                agent_id, version_id = pairs[i % len(pairs)]
                created = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
                roll = rng.random()
                status = "completed" if roll < 0.85 else "failed" if roll < 0.95 else "cancelled"
                rows.append(
                    Execution(
                        organization_id=organization.pk,
                        agent_id=agent_id,
                        agent_version_id=version_id,
                        input={"task": f"Listed task {i}", "context": {}},
                        config=config,
                        status=status,
                        output={"text": "Done: two model calls, one tool call."} if status == "completed" else None,
                        result_text="Done: two model calls, one tool call." if status == "completed" else "",
                        error="The provider failed." if status == "failed" else "",
                        error_code="ExecutionFailed" if status == "failed" else "",
                        tokens_input=120,
                        tokens_output=20,
                        tokens_total=140,
                        llm_calls=2,
                        tool_calls=1,
                        created_at=created,
                        started_at=created + timedelta(milliseconds=40),
                        completed_at=created + timedelta(seconds=2),
                        duration_ms=1960,
                    )
                )
            Execution.objects.bulk_create(rows)
        log(f"[P5] seeded executions up to {executions:,}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE agents_agent, agents_agentversion, executions_execution")
    return {
        "agents": Agent.objects.filter(organization=organization).count(),
        "executions": Execution.objects.filter(organization=organization).count(),
        "seed_seconds": round(time.perf_counter() - started, 1),
    }


def queries_per_request(token: str) -> dict[str, dict[int, int]]:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    counts: dict[str, dict[int, int]] = {}
    for name, path in ENDPOINTS.items():
        client.get(path, {"limit": 10})  # warm the per-process caches
        counts[name] = {}
        for size in PAGE_SIZES:
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path, {"limit": size})
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:200]!r}")
            counts[name][size] = len(captured.captured_queries)
    return counts


def _list_step(path: str, tokens: list[str]):
    async def step(connection: load.Connection, client: int, number: int) -> tuple[int, Any]:
        offset = (abs(number) % 10) * 50
        headers = {"Authorization": f"Bearer {tokens[client % len(tokens)]}"}
        response = await connection.request("GET", f"{path}?limit=50&offset={offset}", None, headers)
        return response.status, None

    return step


def run(args: Any) -> Figure:
    figure = Figure("P5", f"list endpoints, {args.p5_executions:,} executions and {args.p5_agents:,} agents")
    owner = data.tenant(f"bench-lists-{args.p5_agents}-{args.p5_executions}", tokens=args.p5_clients)
    seeded = seed(owner, agents=args.p5_agents, executions=args.p5_executions)
    # Rows just bulk-inserted are not yet marked all-visible: every count would read the table
    # instead of an index (an executions page measured 14 ms of PostgreSQL CPU right after the
    # seed, 2 ms after this). A tenant's table in service has been through autovacuum.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) executions_execution, agents_agent, agents_agentversion")
    queries = queries_per_request(owner.tokens[0])
    results: dict[str, Any] = {}
    database = database_name()
    with Processes() as procs, Sampler(lambda: pg_connections(database), 0.5) as connections:
        web = procs.web(workers=args.p5_web_workers, extra_env={"DB_POOL_MAX_SIZE": args.web_db_pool})
        # uvicorn's process tree (its workers included) and PostgreSQL, from their own counters.
        meter = CpuMeter({"web": procs.started[-1].pid, "postgresql": postmaster_pid()})
        for name, path in ENDPOINTS.items():
            step = _list_step(path, owner.tokens)
            alone = load.run(load.closed_loop(web, step, clients=1, seconds=max(2.0, args.p5_seconds / 4), warmup=5))
            meter.start()
            loaded = load.run(load.closed_loop(web, step, clients=args.p5_clients, seconds=args.p5_seconds, warmup=2))
            meter.stop()
            # The warm-up requests are in the counters too: counted, so the figure is not flattered.
            cpu = meter.per_run_ms(len(loaded.samples) + 2 * args.p5_clients)
            results[name] = {
                "alone": {
                    "latency_ms": summary(alone.latencies()),
                    "rps": round(alone.rate, 1),
                    "errors": alone.errors,
                },
                "loaded": {
                    "latency_ms": summary(loaded.latencies()),
                    "rps": round(loaded.rate, 1),
                    "errors": loaded.errors,
                    "error_statuses": statuses(loaded),
                    "clients": args.p5_clients,
                    "cpu_ms_per_request": cpu,
                },
            }
    most = max(connections.numbers(), default=0)
    figure.details = {
        "seeded": seeded,
        "queries_per_request": queries,
        "load": results,
        "db_connections_max": most,
    }
    for name in ENDPOINTS:
        loaded = results[name]["loaded"]
        alone = results[name]["alone"]
        p99 = loaded["latency_ms"]["p99"]
        figure.add(
            f"GET {name}/ p99, {args.p5_clients} clients",
            p99,
            unit="ms",
            target=f"<= {TARGET_P99_MS:g} ms",
            met=p99 is not None and p99 <= TARGET_P99_MS and not loaded["errors"],
            baseline=alone["latency_ms"]["p50"],
            baseline_label="ms p50, one client",
            ratio=ratio(p99, alone["latency_ms"]["p50"]),
        )
        cpu = loaded["cpu_ms_per_request"]
        figure.add(
            f"GET {name}/ server CPU per request (web + PostgreSQL)",
            cpu["total"],
            unit="ms",
            target="<= 6 ms",
            met=None if cpu["total"] is None else cpu["total"] <= 6.0,
        )
        for part in ("web", "postgresql"):
            figure.add(f"  CPU per request: {part}", cpu[part], unit="ms")
        counts = queries[name]
        figure.add(
            f"GET {name}/ queries per request (limit {'/'.join(map(str, PAGE_SIZES))})",
            counts[PAGE_SIZES[-1]],
            target="independent of page size",
            met=len(set(counts.values())) == 1,
        )
        figure.note(
            f"{name}: {args.p5_clients} clients -> p50 {fmt(loaded['latency_ms']['p50'])}, p95 "
            f"{fmt(loaded['latency_ms']['p95'])}, p99 {fmt(p99)}, {loaded['rps']:.0f} req/s"
            f" ({loaded['errors']} errors {loaded['error_statuses'] or ''}); one client alone -> p50 {fmt(alone['latency_ms']['p50'])}, "
            f"{alone['rps']:.0f} req/s. Queries per request at limit {PAGE_SIZES}: {list(counts.values())}."
        )
    figure.note(
        f"Tenant: {seeded['agents']:,} agents, {seeded['executions']:,} executions (seeded in "
        f"{seeded['seed_seconds']} s; reused by later runs). Web: uvicorn x {args.p5_web_workers} (DB pool {args.web_db_pool or 'off'}); "
        f"{args.p5_seconds:g} s of load per endpoint; pages of 50 at offsets 0-450. With closed-loop clients, "
        "latency = clients / throughput: p99 within 50 ms at 32 clients needs > 640 requests/s. "
        f"At most {most} connections to the bench database were open (this process's included)."
    )
    if any(results[n]["loaded"]["errors"] or results[n]["alone"]["errors"] for n in ENDPOINTS):
        figure.status = "partial"
    return figure


def statuses(result: load.LoadResult) -> dict[int, int]:
    """Failed requests by HTTP status (0: the connection failed)."""
    counts: dict[int, int] = {}
    for sample in result.samples:
        if not 200 <= sample.status < 300:
            counts[sample.status] = counts.get(sample.status, 0) + 1
    return counts


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"
