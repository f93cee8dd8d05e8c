"""P3 - executions in flight on one worker host with a slow model (1 s per call).

One Celery worker of the platform (threads pool, ``--p3-concurrency`` threads, psycopg's
connection pool of ``--p3-pool``), the fake provider answering after ``--p3-latency-ms``.
``--p3-runs`` runs of the bench agent are started through ``execution_start`` from this
process (queued after commit, as the API does), for at most ``--p3-create-seconds``, before
the worker starts - the figure is the worker host's, not this process's rate of starting
runs; then, from the moment the worker is up:

- concurrency reached: the most runs in the running state at once, sampled every 0.25 s
  (the overlap of the rows' ``started_at``/``completed_at`` is kept in the details);
- throughput: completed runs per second between the 10th and 90th percentile of
  completions, against Little's law for the concurrency reached (L / W with W the two model
  calls' latency, the least a run can take);
- database connections: the most connections to the bench database, sampled from
  ``pg_stat_activity`` (this process's own included), against the pool's size.

Baseline, same run, same worker (pool and concurrency): ``bench.sleep`` tasks that only wait
as long as a run waits for its model (two calls x the latency), ``--p3-baseline-tasks`` of
them; their tasks per second and the most in flight.

The shipped runtime returns its database connection to the pool while a run waits for its
model (``AGENTRY_RELEASE_DB_DURING_MODEL_CALL``, on by default with the pool). With
``--p3-hold-db`` the figure is measured a second time with that turned off - a run holding
its connection through the call, as the runtime did before - to show what the release buys.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from typing import Any

from django.db import connection

from bench import data
from bench.env import Processes, database_name, pg_connections, redis, task_failures, wait_for_count
from bench.report import Figure, ratio
from bench.tasks import sleep
from executions.models import Execution, ExecutionStep

TARGET_CONCURRENCY = 500
TARGET_SHARE = 0.8
STALL_SECONDS = 30.0
QUICK_STALL_SECONDS = 10.0


class Sampler:
    """Every ``interval`` seconds, in a thread: a callable's value, kept with its time."""

    def __init__(self, sample, interval: float = 0.25) -> None:
        self.sample, self.interval = sample, interval
        self.values: list[tuple[float, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.values.append((time.time(), self.sample()))
                except Exception as exc:  # a sample lost is not a figure lost
                    self.values.append((time.time(), repr(exc)))
                self._stop.wait(self.interval)
        finally:
            connection.close()

    def numbers(self, key: str | None = None) -> list[float]:
        out = []
        for _, value in self.values:
            if isinstance(value, dict) and key in value:
                out.append(value[key])
            elif isinstance(value, int | float):
                out.append(value)
        return out


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def steady_rate(ends: list[float]) -> float | None:
    ends = sorted(ends)
    if len(ends) < 20:
        return None
    t10, t90 = ends[len(ends) // 10], ends[(len(ends) * 9) // 10]
    return (len(ends) * 0.8) / (t90 - t10) if t90 > t10 else None


def sleeping_baseline(count: int, seconds: float, *, timeout: float) -> dict[str, Any]:
    """``count`` tasks that sleep ``seconds`` on the worker: tasks/s and the most in flight."""
    client = redis()
    key = f"bench:sleep:{uuid.uuid4().hex}"

    def in_flight() -> dict[str, int]:
        started, done = client.mget(f"{key}:started", key)
        return {"in_flight": int(started or 0) - int(done or 0), "done": int(done or 0)}

    began = time.perf_counter()
    with Sampler(in_flight, 0.1) as sampler:
        for _ in range(count):
            sleep.apply_async(args=[key, seconds], queue="io")
        finished = wait_for_count(lambda: int(client.get(key) or 0), count, stall=20.0, timeout=timeout)
    elapsed = time.perf_counter() - began
    done_series = [(t, v["done"]) for t, v in sampler.values if isinstance(v, dict)]
    # Steady rate: completions between 10 % and 90 % of the total, from the samples.
    rate = None
    lo = next((t for t, d in done_series if d >= count * 0.1), None)
    hi = next((t for t, d in done_series if d >= count * 0.9), None)
    if lo is not None and hi is not None and hi > lo:
        rate = count * 0.8 / (hi - lo)
    return {
        "tasks": count,
        "tasks_lost": count - finished,  # raised in the worker, or never delivered
        "sleep_s": seconds,
        "tasks_per_s": round(rate if rate else count / elapsed, 1),
        "tasks_per_s_overall": round(count / elapsed, 1),
        "max_in_flight": max(sampler.numbers("in_flight"), default=0),
        "seconds": round(elapsed, 2),
    }


def measure_runs(args: Any, *, hold_db: bool, label: str) -> dict[str, Any]:
    latency_s = args.p3_latency_ms / 1000
    extra = {"DB_POOL_MAX_SIZE": args.p3_pool}
    if hold_db:
        extra["AGENTRY_RELEASE_DB_DURING_MODEL_CALL"] = "0"
    database = database_name()
    with Processes() as procs:
        provider = procs.fake_provider(latency_ms=args.p3_latency_ms)
        owner = data.tenant("bench-runtime")
        agent = data.agent(owner, f"P3 {label}")
        # The backlog first, with no worker running: the figure is what one worker host
        # keeps in flight and completes, not how fast this process can start runs.
        began = time.time()
        started = data.start_runs(
            owner, agent, args.p3_runs, "Look the key up and answer.", seconds=args.p3_create_seconds
        )
        created_s = time.time() - began
        print(f"[P3] {label}: {len(started.ids)} runs queued in {created_s:.0f} s; starting the worker", flush=True)

        def sample() -> dict[str, int]:
            return {
                "running": Execution.objects.filter(agent_id=agent.pk, status="running").count(),
                "connections": pg_connections(database),
            }

        worker = procs.worker(
            queues="io,default", concurrency=args.p3_concurrency, provider_url=provider, extra_env=extra
        )
        worker_up = time.time()
        with Sampler(sample, 0.25) as sampler:
            waited = data.wait_for_runs(
                agent.pk,
                len(started.ids),
                stall_seconds=QUICK_STALL_SECONDS if args.quick else STALL_SECONDS,
                timeout=args.p3_timeout,
            )
            if (waited["stalled"] or waited["timed_out"]) and worker.alive():
                # Celery's SIGUSR1 handler writes every thread's stack to the worker's log:
                # where the threads wait (pool, model, lock) is the first thing to know.
                os.kill(worker.pid, signal.SIGUSR1)
                time.sleep(1.0)
                waited["thread_stacks_in"] = str(worker.log_path)
        rows = list(
            Execution.objects.filter(agent_id=agent.pk).values(
                "status", "created_at", "started_at", "completed_at", "error_code"
            )
        )
        failures = task_failures(worker)
        tool_errors = list(
            ExecutionStep.objects.filter(execution__agent_id=agent.pk, step_type="act", is_error=True).values_list(
                "tool_output", flat=True
            )
        )
        baseline = None
        if not hold_db:
            # Same worker, same pool and concurrency, once the runs are done.
            baseline = sleeping_baseline(args.p3_baseline_tasks, 2 * latency_s, timeout=args.p3_timeout)
            print(
                f"[P3] baseline: {baseline['tasks_per_s']:.0f} sleeping tasks/s, {baseline['max_in_flight']} in flight",
                flush=True,
            )
    completed = [r for r in rows if r["status"] == "completed"]
    intervals = [
        (r["started_at"].timestamp(), r["completed_at"].timestamp())
        for r in rows
        if r["started_at"] and r["completed_at"]
    ]
    # Runs still going when the wait ended are in flight until then.
    end = time.time()
    intervals += [(r["started_at"].timestamp(), end) for r in rows if r["started_at"] and not r["completed_at"]]
    # Runs in the running state at one instant (claimed, lease held), sampled every 0.25 s;
    # the overlap of [started_at, completed_at] counts a little more: started_at is taken
    # before the claim waits for a database connection.
    overlap = max_overlap(intervals)
    concurrency = max(sampler.numbers("running"), default=0)
    durations = [e - s for s, e in intervals if e > s]
    ends = [r["completed_at"].timestamp() for r in completed]
    rate = steady_rate(ends)
    overall = len(completed) / (max(ends) - worker_up) if ends else None
    ideal = concurrency / (2 * latency_s) if concurrency else None
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    errors: dict[str, int] = {}
    for r in rows:
        if r["error_code"]:
            errors[r["error_code"]] = errors.get(r["error_code"], 0) + 1
    return {
        "label": label,
        "runs": len(rows),
        "runs_asked": args.p3_runs,
        "created_in_s": round(created_s, 1),
        "start_retries": started.retries,
        "start_failures": started.failed,
        "statuses": statuses,
        "error_codes": errors,
        "worker_task_failures": failures,
        "tool_steps_failed": len(tool_errors),
        "tool_failure_samples": sorted({str((e or {}).get("error", e))[:160] for e in tool_errors})[:3],
        "wait": waited,
        "concurrency_reached": concurrency,
        "overlap_of_run_intervals": overlap,
        "runs_per_s": rate or overall,
        "runs_per_s_overall": overall,
        "run_seconds_p50": sorted(durations)[len(durations) // 2] if durations else None,
        "littles_law_runs_per_s": ideal,
        "share_of_littles_law": ratio(rate or overall, ideal),
        "db_connections_max": max(sampler.numbers("connections"), default=0),
        "db_pool_max_size": args.p3_pool,
        "worker_threads": args.p3_concurrency,
        "baseline_sleep": baseline,
    }


def run(args: Any) -> Figure:
    figure = Figure("P3", f"in-flight executions with {args.p3_latency_ms:g} ms model latency, one worker host")
    main = measure_runs(args, hold_db=False, label="as shipped")
    results = [main]
    if args.p3_hold_db:
        results.append(measure_runs(args, hold_db=True, label="connection held during model calls"))
    baseline = main["baseline_sleep"]
    figure.details = {"runs_per_s": main["runs_per_s"], "measurements": results}
    figure.add(
        "concurrency reached (runs in flight)",
        main["concurrency_reached"],
        target=f">= {TARGET_CONCURRENCY}",
        met=main["concurrency_reached"] >= TARGET_CONCURRENCY,
        baseline=baseline["max_in_flight"],
        baseline_label="sleeping tasks in flight",
    )
    share = ratio(main["runs_per_s"], baseline["tasks_per_s"])
    figure.add(
        "throughput vs sleeping Celery task",
        main["runs_per_s"],
        unit="runs/s",
        target=f">= {TARGET_SHARE:.0%} of baseline",
        met=share is not None and share >= TARGET_SHARE,
        baseline=baseline["tasks_per_s"],
        baseline_label="sleeping tasks/s",
        ratio=share,
    )
    figure.add(
        "throughput vs Little's law (L / 2 model calls)",
        main["runs_per_s"],
        unit="runs/s",
        baseline=main["littles_law_runs_per_s"],
        baseline_label="ideal runs/s",
        ratio=main["share_of_littles_law"],
    )
    figure.add(
        "database connections used (max)",
        main["db_connections_max"],
        target=f"pool of {args.p3_pool}, no exhaustion",
        met=not main["worker_task_failures"] and main["statuses"].get("completed", 0) == main["runs"],
    )
    for extra in results[1:]:
        figure.add(
            "comparison: concurrency with the connection held",
            extra["concurrency_reached"],
            target=f">= {TARGET_CONCURRENCY}",
            met=extra["concurrency_reached"] >= TARGET_CONCURRENCY,
        )
        figure.add("comparison: throughput with the connection held", extra["runs_per_s"], unit="runs/s")
    for result in results:
        figure.note(
            f"{result['label']}: {result['runs']} runs ({result['statuses']}), queued in {result['created_in_s']} s "
            f"before the worker started ({result['start_retries']} retries after a deadlock, {result['start_failures']} given up); {result['concurrency_reached']} running at "
            f"once at most (sampled; {result['overlap_of_run_intervals']} by overlapping started/completed times), a run took "
            f"{fmt_s(result['run_seconds_p50'])} (p50) against {2 * args.p3_latency_ms / 1000:g} s of model latency; "
            f"{fmt_rate(result['runs_per_s'])} against Little's law's {fmt_rate(result['littles_law_runs_per_s'])} "
            f"for that concurrency; at most {result['db_connections_max']} connections to the bench database "
            f"(pool of {result['db_pool_max_size']} in the worker, {result['worker_threads']} threads)."
            + (f" Errors: {result['error_codes']}." if result["error_codes"] else "")
            + (
                f" {result['tool_steps_failed']} tool calls failed inside runs: {result['tool_failure_samples']}."
                if result["tool_steps_failed"]
                else ""
            )
            + (
                f" Worker tasks that raised: {result['worker_task_failures']} (a run's own task retries itself "
                "2 s after a database error; other tasks are listed here)."
                if result["worker_task_failures"]
                else ""
            )
            + (
                f" The first run ended {result['wait']['first_end_s']} s after the worker was up."
                if result["wait"].get("first_end_s") is not None
                else ""
            )
            + (
                " The wait stopped: no run ended and no step was written for a while"
                f" ({result['wait'].get('steps')} steps); the worker's thread stacks are in"
                f" {result['wait'].get('thread_stacks_in')}."
                if result["wait"]["stalled"]
                else ""
            )
        )
    figure.note(
        f"Baseline: {baseline['tasks']} bench.sleep tasks ({baseline['tasks_lost']} lost) of {baseline['sleep_s']:g} s on the same worker "
        f"(threads x {args.p3_concurrency}): {baseline['tasks_per_s']:.0f}/s at steady state, "
        f"{baseline['max_in_flight']} in flight at most."
    )
    if any(r["worker_task_failures"] or r["statuses"].get("completed", 0) != r["runs"] for r in results):
        figure.status = "partial"
    return figure


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} runs/s"
