"""P2 — end-to-end executions per second: API → queue → worker → completed.

The real processes: uvicorn serving ``config.asgi`` (``--p2-web-workers``), ``--p2-worker-processes``
Celery workers of the platform on the io and default queues (threads pool, ``--p2-concurrency``
each; one by default), the fake
provider at zero latency. ``--p2-clients`` keep-alive API clients POST
``/api/v1/agents/{id}/execute/`` (each with its own token) until ``--p2-runs`` runs are
accepted or ``--p2-seconds`` passed; the figure is runs / (last run completed - first run created), from the rows'
own timestamps. Each run is one tool call and two model calls.

Baseline, same run, same broker, same worker (pool and concurrency): the bare Celery no-op
round trip — ``bench.noop`` tasks published as fast as this process can, each counted in
Redis when it ran — in tasks per second. The ratio says what share of the task system's
ceiling a whole agent run reaches.

With ``--p2-worker-processes N`` above 1, the same load is first run with one worker process
(fresh web server and worker, same sizes), then with N: runs/s and machine CPU per run of
both, side by side, say what the extra processes buy on this host.

Also measured: runs one at a time (``--p2-sequential``), created → completed from the rows'
timestamps, with the model calls' own time taken out, per step — the end-to-end overhead per
step that compares with a LangGraph server's.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import httpx
from django.db.models import Sum

from bench import data, load
from bench.cpu import CpuMeter, postmaster_pid
from bench.env import Processes, redis, wait_for_count, wait_until
from bench.report import Figure, percentile, ratio, summary
from bench.tasks import noop
from executions.models import TERMINAL_STATUSES, Execution, ExecutionStep

TASK = "Look the key up and answer."
RETRIES = 5
STALL_SECONDS = 20.0


def noop_round_trips(count: int, *, queue: str = "io", timeout: float = 300.0) -> dict[str, Any]:
    """Publish ``count`` no-op tasks and wait until all ran; tasks per second end to end."""
    client = redis()
    warm = f"bench:noop:warm:{uuid.uuid4().hex}"
    for _ in range(50):
        noop.apply_async(args=[warm], queue=queue)
    wait_until(lambda: int(client.get(warm) or 0) >= 50, 60, "no-op warm-up")
    key = f"bench:noop:{uuid.uuid4().hex}"
    started = time.perf_counter()
    for _ in range(count):
        noop.apply_async(args=[key], queue=queue)
    published = time.perf_counter() - started
    finished = wait_for_count(lambda: int(client.get(key) or 0), count, stall=20.0, timeout=timeout, interval=0.01)
    elapsed = time.perf_counter() - started
    return {
        "tasks": count,
        "tasks_lost": count - finished,
        "tasks_per_s": round(finished / elapsed, 1),
        "publish_per_s": round(count / published, 1),
        "seconds": round(elapsed, 2),
    }


def _execute_step(agent_id: Any, tokens: list[str]):
    path = f"/api/v1/agents/{agent_id}/execute/"
    body = {"task": TASK}

    async def step(connection: load.Connection, client: int, number: int) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {tokens[client % len(tokens)]}"}
        retried = 0
        while True:
            response = await connection.request("POST", path, body, headers)
            # 503 is the platform's "retry shortly" (a database deadlock answers it too): a
            # client retries it, and so do we, counting.
            if response.status != 503 or retried >= RETRIES:
                break
            retried += 1
        data = {"retries": retried, "error": response.body[:300] if response.status >= 300 else None}
        return response.status, data

    return step


def _finished(agent_id: Any) -> int:
    return Execution.objects.filter(agent_id=agent_id, status__in=TERMINAL_STATUSES).count()


def _rows(agent_id: Any) -> list[dict[str, Any]]:
    return list(
        Execution.objects.filter(agent_id=agent_id).values(
            "id", "status", "created_at", "started_at", "completed_at", "llm_calls", "tool_calls", "error_code"
        )
    )


def _model_ms(execution_ids: list[Any]) -> dict[Any, float]:
    rows = (
        ExecutionStep.objects.filter(execution_id__in=execution_ids, step_type="think")
        .values("execution_id")
        .annotate(ms=Sum("duration_ms"))
    )
    return {r["execution_id"]: float(r["ms"] or 0) for r in rows}


def sequential(web_url: str, token: str, agent_id: Any, count: int) -> dict[str, Any]:
    """Runs one after the other through the API; latency from the rows' timestamps."""
    ids = []
    with httpx.Client(base_url=web_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for _ in range(count):
            response = client.post(f"/api/v1/agents/{agent_id}/execute/", json={"task": TASK})
            response.raise_for_status()
            execution_id = response.json()["id"]
            ids.append(execution_id)
            wait_until(
                lambda eid=execution_id: Execution.objects.filter(pk=eid, status__in=TERMINAL_STATUSES).exists(),
                60,
                "a sequential run",
                interval=0.005,
            )
    rows = {r["id"]: r for r in Execution.objects.filter(pk__in=ids).values("id", "created_at", "completed_at")}
    model = _model_ms(ids)
    latencies, per_step = [], []
    for execution_id, row in rows.items():
        total = (row["completed_at"] - row["created_at"]).total_seconds() * 1000
        latencies.append(total)
        per_step.append((total - model.get(execution_id, 0.0)) / 3)  # think, act, think
    return {"runs": count, "latency_ms": summary(latencies), "overhead_per_step_ms": summary(per_step)}


def _measure(args: Any, processes: int, *, full: bool) -> dict[str, Any]:
    """One measurement with ``processes`` worker processes (each threads x ``--p2-concurrency``)
    and its own web server: the closed-loop load, and with ``full`` the no-op baseline and the
    runs one at a time first."""
    clients = args.p2_clients
    with Processes() as procs:
        provider = procs.fake_provider(latency_ms=0)
        web = procs.web(
            provider_url=provider, workers=args.p2_web_workers, extra_env={"DB_POOL_MAX_SIZE": args.web_db_pool}
        )
        web_process = procs.started[-1]
        workers = [
            procs.worker(queues="io,default", concurrency=args.p2_concurrency, provider_url=provider)
            for _ in range(processes)
        ]
        meter = CpuMeter(
            {
                "web": web_process.pid,
                **{f"worker-{n}": worker.pid for n, worker in enumerate(workers, 1)},
                "postgresql": postmaster_pid(),
            }
        )
        owner = data.tenant("bench-runtime", tokens=clients)
        warm_agent = data.agent(owner, "P2 warm-up")
        main_agent = data.agent(owner, f"P2 throughput x{processes}")

        baseline = noop_round_trips(args.p2_noop) if full else None
        if baseline is not None:
            print(f"[P2] baseline: {baseline['tasks_per_s']:.0f} no-op tasks/s", flush=True)

        # Warm-up (imports, SDK clients, connections of every web and worker thread), then
        # the sequential runs on the same agent.
        warm = load.run(
            load.closed_loop(
                web, _execute_step(warm_agent.pk, owner.tokens), clients=clients, total=max(clients * 2, 10)
            )
        )
        wait_until(lambda: _finished(warm_agent.pk) >= len(warm.ok), 120, "warm-up runs")
        seq = sequential(web, owner.tokens[0], warm_agent.pk, args.p2_sequential) if full else None

        fake_before = httpx.get(provider.removesuffix("/v1") + "/_fake/stats", timeout=5).json()
        load_before = os.getloadavg()[0]
        meter.start()
        submit = load.run(
            load.closed_loop(
                web,
                _execute_step(main_agent.pk, owner.tokens),
                clients=clients,
                total=args.p2_runs,
                seconds=args.p2_seconds,
            )
        )
        accepted = len(submit.ok)
        waited = data.wait_for_runs(
            main_agent.pk,
            accepted,
            stall_seconds=STALL_SECONDS / 2 if args.quick else STALL_SECONDS,
            timeout=max(120.0, args.p2_runs / 5),
        )
        meter.stop()
        load_after = os.getloadavg()[0]
        fake_after = httpx.get(provider.removesuffix("/v1") + "/_fake/stats", timeout=5).json()
        rows = _rows(main_agent.pk)
    if not full:
        print(f"[P2] with {processes} worker process(es): {len(rows)} runs measured", flush=True)
    return {
        "processes": processes,
        "rows": rows,
        "submit": submit,
        "accepted": accepted,
        "waited": waited,
        "meter": meter,
        "baseline": baseline,
        "sequential": seq,
        "fake_before": fake_before,
        "fake_after": fake_after,
        "load_average": [round(load_before, 2), round(load_after, 2)],
    }


def _rate(rows: list[dict[str, Any]]) -> tuple[float | None, float | None, float, list[dict], list[dict]]:
    """runs/s (completed ÷ last completed - first created), steady runs/s, span, done, completed."""
    done = [r for r in rows if r["completed_at"] is not None]
    completed = [r for r in rows if r["status"] == "completed"]
    first = min(r["created_at"] for r in rows)
    last = max(r["completed_at"] for r in done) if done else first
    span = (last - first).total_seconds()
    rate = len(completed) / span if span else None
    ends = sorted((r["completed_at"] - first).total_seconds() for r in done)
    steady = None
    if len(ends) >= 20:
        t10, t90 = ends[len(ends) // 10], ends[(len(ends) * 9) // 10]
        steady = (len(ends) * 0.8) / (t90 - t10) if t90 > t10 else None
    return rate, steady, span, done, completed


def _cpu(measured: dict[str, Any], runs: int) -> dict[str, float | None]:
    """Machine CPU per run by process; ``worker`` is the sum over the worker processes."""
    cpu = measured["meter"].per_run_ms(runs)
    per_worker = [cpu.pop(f"worker-{n}") for n in range(1, measured["processes"] + 1)]
    known = [v for v in per_worker if v is not None]
    worker = sum(known) if len(known) == len(per_worker) else None
    out = {"web": cpu["web"], "worker": worker, "postgresql": cpu["postgresql"], "total": cpu["total"]}
    if len(per_worker) > 1:
        out.update({f"worker-{n}": v for n, v in enumerate(per_worker, 1)})
    return out


def _by_processes(measured: dict[str, Any]) -> dict[str, Any]:
    """The short record of one measurement, for the side by side of worker process counts."""
    rate, steady, span, done, completed = _rate(measured["rows"])
    return {
        "worker_processes": measured["processes"],
        "runs_per_s": rate,
        "steady_runs_per_s": steady,
        "runs_completed": len(completed),
        "runs_not_completed": len(measured["rows"]) - len(completed),
        "seconds": round(span, 2),
        "cpu_ms_per_run": _cpu(measured, len(done)),
        "load_average_start_end": measured["load_average"],
    }


def run(args: Any) -> Figure:
    figure = Figure("P2", "end-to-end executions per second (API → worker → completed)")
    clients = args.p2_clients
    processes = max(1, args.p2_worker_processes)
    # With several worker processes, the same load with one first (same sizes, same run): what
    # the extra processes buy on this host, beside the figure at the asked-for count.
    single = _by_processes(_measure(args, 1, full=False)) if processes > 1 else None
    measured = _measure(args, processes, full=True)
    rows, submit, accepted, waited = measured["rows"], measured["submit"], measured["accepted"], measured["waited"]
    baseline, seq = measured["baseline"], measured["sequential"]
    fake_before, fake_after = measured["fake_before"], measured["fake_after"]

    rate, steady, span, _, completed = _rate(rows)
    post_latency = submit.latencies()
    here = _by_processes(measured)
    cpu = here["cpu_ms_per_run"]
    figure.details = {
        "cpu_ms_per_run": cpu,
        "runs_per_s": rate,
        "steady_runs_per_s": steady,
        "runs_accepted": accepted,
        "api_errors": submit.errors,
        "api_retries_after_503": sum(
            (s.data or {}).get("retries", 0) for s in submit.samples if isinstance(s.data, dict)
        ),
        "api_error_samples": [s.data for s in submit.samples if s.status >= 300 or s.status == 0][:3],
        "wait": waited,
        "runs_completed": len(completed),
        "runs_not_completed": {
            status: sum(1 for r in rows if r["status"] == status) for status in {r["status"] for r in rows}
        },
        "seconds": round(span, 2),
        "api_posts_per_s": round(submit.rate, 1),
        "api_post_latency_ms": summary(post_latency),
        "baseline_noop": baseline,
        "sequential": seq,
        "model_requests": fake_after["requests"] - fake_before["requests"],
        "model_requests_per_s": (fake_after["requests"] - fake_before["requests"]) / span if span else None,
        "fake_connections_opened": fake_after["connections"] - fake_before["connections"],
        "setup": {
            "web_workers": args.p2_web_workers,
            "web_db_pool": args.web_db_pool,
            "worker_pool": f"threads x {args.p2_concurrency}",
            "worker_processes": processes,
            "api_clients": clients,
        },
        "by_worker_processes": [x for x in (single, here) if x is not None],
    }
    figure.add(
        "executions/s end to end",
        rate,
        unit="runs/s",
        target="≥ 2x LangGraph dev (see below)",
        baseline=baseline["tasks_per_s"],
        baseline_label="no-op tasks/s",
        ratio=ratio(rate, baseline["tasks_per_s"]),
    )
    figure.add(
        "machine CPU per run (web + worker + PostgreSQL)",
        cpu["total"],
        unit="ms",
        target="≤ 25 ms",
        met=None if cpu["total"] is None else cpu["total"] <= 25.0,
    )
    for name in ("web", "worker", "postgresql"):
        figure.add(f"  CPU per run: {name}", cpu[name], unit="ms")
    if single is not None:
        figure.add(
            f"executions/s with {processes} worker processes vs 1 (same run, same sizes)",
            rate,
            unit="runs/s",
            baseline=single["runs_per_s"],
            baseline_label="runs/s with 1 worker process",
            ratio=ratio(rate, single["runs_per_s"]),
        )
        figure.add(
            f"machine CPU per run with {processes} worker processes vs 1",
            cpu["total"],
            unit="ms",
            baseline=single["cpu_ms_per_run"]["total"],
            baseline_label="ms with 1 worker process",
            ratio=ratio(cpu["total"], single["cpu_ms_per_run"]["total"]),
        )
    figure.add("end-to-end latency, one run at a time (p50)", seq["latency_ms"]["p50"], unit="ms")
    figure.add("end-to-end overhead per step, one at a time (p50)", seq["overhead_per_step_ms"]["p50"], unit="ms")
    not_done = len(rows) - len(completed)
    retries = figure.details["api_retries_after_503"]
    if not_done or submit.errors or retries:
        figure.note(
            f"Problems: {not_done} runs did not complete ({figure.details['runs_not_completed']}"
            + ("; no run ended for a while, so the wait stopped" if waited["stalled"] else "")
            + f"), {retries} API requests answered 503 and were retried, {submit.errors} failed for good. "
            "The worker and web logs (.data/bench/) say why; runs/s counts completed runs only."
        )
    figure.note(
        f"{accepted} runs posted by {clients} keep-alive API clients ({submit.rate:.0f} accepted/s, POST p50 "
        f"{fmt(percentile(post_latency, 50))}, p99 {fmt(percentile(post_latency, 99))}); web: uvicorn x "
        f"{args.p2_web_workers} (DB pool {args.web_db_pool or 'off'}), worker: {processes} process(es) of threads x "
        f"{args.p2_concurrency} on io+default; runs/s = completed runs ÷ "
        f"(last completed - first created) = {len(completed)} ÷ {span:.1f} s"
        + (f"; steady state (10th-90th percentile of completions) {steady:.1f} runs/s." if steady else ".")
    )
    if single is not None:
        figure.note(_versus_single(single, here))
    figure.note(
        f"Baseline: {baseline['tasks']} bare no-op Celery tasks on the same worker and broker, "
        f"{baseline['tasks_per_s']:.0f}/s round trip (published at {baseline['publish_per_s']:.0f}/s)."
    )
    figure.note(
        f"The fake answered {figure.details['model_requests']} model calls "
        f"({figure.details['model_requests_per_s'] or 0:.0f}/s) over {figure.details['fake_connections_opened']} "
        "new TCP connections (keep-alive)."
    )
    figure.note(
        f"One at a time ({args.p2_sequential} runs): created → completed p50 {fmt(seq['latency_ms']['p50'])}; "
        f"minus the model calls, {fmt(seq['overhead_per_step_ms']['p50'])} per step (queue and API commit "
        "included), to compare with the LangGraph server's overhead per step."
    )
    return figure


def _versus_single(single: dict[str, Any], here: dict[str, Any]) -> str:
    def one(x: dict[str, Any]) -> str:
        cpu = x["cpu_ms_per_run"]
        workers = ", ".join(f"{k} {v:.0f}" for k, v in cpu.items() if k.startswith("worker-") and v is not None)
        return (
            f"{x['worker_processes']} worker process(es): {x['runs_completed']} runs in {x['seconds']:.1f} s, "
            f"{_num(x['runs_per_s'])} runs/s (steady {_num(x['steady_runs_per_s'])}), machine CPU per run "
            f"{_num(cpu['total'])} ms (web {_num(cpu['web'])}, worker {_num(cpu['worker'])}"
            + (f" [{workers}]" if workers else "")
            + f", PostgreSQL {_num(cpu['postgresql'])}), load average {x['load_average_start_end'][0]} → "
            f"{x['load_average_start_end'][1]}"
        )

    return f"Worker processes, same sizes, one after the other in this run: {one(single)}; {one(here)}."


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{_num(value)} ms"
