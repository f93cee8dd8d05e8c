"""P1 — the platform's overhead per agent step, the model's time taken out.

Runs executions of the bench agent in this process with ``executions.runtime.loop.run_execution``
(claim, think/act loop, finish: everything a worker does for a run, without the queue), against
the fake provider at zero latency. Each run's wall time minus the time spent inside the
model calls (``complete_with_fallback``, timed around the call) is the platform's; divided by
the run's think and act steps, it is the overhead per step. Runs of 1, 2 and 4 tool rounds
(``[rounds=N]`` in the task; a round is one think and one act step) separate the fixed cost
of a run (claim, start, finish) from the cost of a step (the slope).

SQL: every query of a run is captured on separate runs (capturing costs time), for each
number of rounds; constant queries per step means the count grows by the same amount per
round. The baseline is what those queries cost at the least: queries per step x the median
round trip of ``SELECT 1`` on the same connection, measured in the same run.

The queue is not used here (P2 measures it): ``execution_start`` still runs in full, only
its enqueue after commit is replaced, in this process, by nothing.
"""

from __future__ import annotations

import itertools
import statistics
import time
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench import data
from bench.env import Processes, purge_queues, use_provider_in_process
from bench.report import Figure, percentile, ratio, summary
from executions import services
from executions.models import Execution, ExecutionStep
from executions.runtime import think
from executions.runtime.loop import run_execution
from executions.services import execution_start

TARGET_MEDIAN_MS = 3.0


@contextmanager
def in_process_runs():
    """No enqueue (this process runs the executions) and a timer around every model call."""
    spent = [0.0, 0.0]  # wall, CPU seconds inside model calls
    original_call = think.complete_with_fallback
    original_enqueue = services.enqueue_execution

    def timed_call(*args: Any, **kwargs: Any) -> Any:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return original_call(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started
            spent[1] += time.process_time() - cpu

    think.complete_with_fallback = timed_call
    services.enqueue_execution = lambda *args, **kwargs: None
    try:
        yield spent
    finally:
        think.complete_with_fallback = original_call
        services.enqueue_execution = original_enqueue


def _start(owner: data.Tenant, agent: Any, rounds: int) -> Any:
    execution, _ = execution_start(
        agent=agent, organization=owner.organization, task=f"[rounds={rounds}] Look the key up.", actor=owner.actor
    )
    return execution.pk


def _steps(execution_id: Any) -> int:
    return ExecutionStep.objects.filter(execution_id=execution_id, step_type__in=["think", "act"]).count()


def _time_runs(owner: data.Tenant, agent: Any, rounds: int, count: int, spent: list[float]) -> list[dict[str, Any]]:
    ids = [_start(owner, agent, rounds) for _ in range(count)]
    runs = []
    for execution_id in ids:
        spent[0] = spent[1] = 0.0
        started, cpu = time.perf_counter(), time.process_time()
        run_execution(execution_id)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        runs.append(
            {
                "id": execution_id,
                "wall_ms": wall * 1000,
                "model_ms": spent[0] * 1000,
                "cpu_ms": (cpu - spent[1]) * 1000,  # this process's CPU outside the model calls
            }
        )
    statuses = dict(Execution.objects.filter(pk__in=ids).values_list("pk", "status"))
    for run in runs:
        run["status"] = statuses[run["id"]]
        run["steps"] = _steps(run["id"])
        run["overhead_ms"] = run["wall_ms"] - run["model_ms"]
        run["per_step_ms"] = run["overhead_ms"] / max(run["steps"], 1)
        run["cpu_per_step_ms"] = run["cpu_ms"] / max(run["steps"], 1)
    return runs


def _count_queries(owner: data.Tenant, agent: Any, rounds: int) -> tuple[int, int]:
    execution_id = _start(owner, agent, rounds)
    with CaptureQueriesContext(connection) as captured:
        run_execution(execution_id)
    return len(captured.captured_queries), _steps(execution_id)


def _select_one_ms(samples: int = 200) -> float:
    times = []
    with connection.cursor() as cursor:
        for _ in range(samples):
            started = time.perf_counter()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(args: Any) -> Figure:
    figure = Figure("P1", "platform overhead per agent step (zero-latency fake LLM)")
    rounds_list = sorted(set(args.p1_rounds))
    with Processes() as procs, in_process_runs() as spent:
        url = procs.fake_provider(latency_ms=0)
        use_provider_in_process(url)
        owner = data.tenant("bench-runtime")
        agent = data.agent(owner, "P1 step overhead")
        _time_runs(owner, agent, 1, args.p1_warmup, spent)  # imports, SDK client, caches
        by_rounds = {r: _time_runs(owner, agent, r, args.p1_runs, spent) for r in rounds_list}
        queries = {r: _count_queries(owner, agent, r) for r in rounds_list}
        select_one = _select_one_ms()
    purge_queues()  # the after-run memory tasks queued by these runs; no worker takes them here

    failed = [run for runs in by_rounds.values() for run in runs if run["status"] != "completed"]
    base = by_rounds[rounds_list[0]]
    per_step = [r["per_step_ms"] for r in base]
    model_per_call = [r["model_ms"] / 2 for r in by_rounds.get(1, base)]
    medians = {r: statistics.median(x["overhead_ms"] for x in runs) for r, runs in by_rounds.items()}
    steps = {r: statistics.median(x["steps"] for x in runs) for r, runs in by_rounds.items()}
    slope = None
    if len(rounds_list) > 1:
        low, high = rounds_list[0], rounds_list[-1]
        slope = (medians[high] - medians[low]) / max(steps[high] - steps[low], 1)
    q_per_step = {r: q / max(s, 1) for r, (q, s) in queries.items()}
    increments = []
    for a, b in itertools.pairwise(rounds_list):
        (qa, sa), (qb, sb) = queries[a], queries[b]
        increments.append((qb - qa) / max(sb - sa, 1))
    constant = len(set(increments)) <= 1 if increments else None
    marginal_queries = increments[-1] if increments else None
    floor = (marginal_queries or q_per_step[rounds_list[0]]) * select_one

    median = statistics.median(per_step) if per_step else None
    figure.add(
        f"overhead per step, median ({rounds_list[0]} tool round)",
        median,
        unit="ms",
        target=f"≤ {TARGET_MEDIAN_MS:g} ms",
        met=median is not None and median <= TARGET_MEDIAN_MS,
        baseline=floor,
        baseline_label="ms SQL floor",
        ratio=ratio(median, floor),
    )
    figure.add("overhead per step, p95", percentile(per_step, 95), unit="ms")
    if slope is not None:
        figure.add(
            f"marginal overhead per step ({rounds_list[0]}→{rounds_list[-1]} rounds)",
            slope,
            unit="ms",
            target=f"≤ {TARGET_MEDIAN_MS:g} ms",
            met=slope <= TARGET_MEDIAN_MS,
        )
    figure.add(
        "SQL queries per step (marginal)",
        marginal_queries,
        target="constant per step",
        met=constant,
    )
    figure.details = {
        "runs_per_size": args.p1_runs,
        "rounds": rounds_list,
        "overhead_ms_per_run_median": {r: round(v, 2) for r, v in medians.items()},
        "steps_per_run": steps,
        "per_step_ms": {r: summary([x["per_step_ms"] for x in runs]) for r, runs in by_rounds.items()},
        "wall_ms_per_run": {r: summary([x["wall_ms"] for x in runs]) for r, runs in by_rounds.items()},
        # CPU of the runtime's process only (PostgreSQL's and Redis's work is not in it): less
        # sensitive than wall time to other work on the machine.
        "runtime_cpu_ms_per_step": {r: summary([x["cpu_per_step_ms"] for x in runs]) for r, runs in by_rounds.items()},
        "model_call_ms": summary(model_per_call),
        "queries_per_run": {r: q for r, (q, _) in queries.items()},
        "queries_per_step_average": {r: round(v, 2) for r, v in q_per_step.items()},
        "queries_added_per_step": increments,
        "select_1_round_trip_ms": round(select_one, 3),
        "failed_runs": len(failed),
        "fixed_cost_per_run_ms": round(medians[rounds_list[0]] - (slope or 0) * steps[rounds_list[0]], 2)
        if slope is not None
        else None,
    }
    if failed:
        figure.status = "partial"
        figure.note(f"{len(failed)} runs did not complete: {sorted({r['status'] for r in failed})}")
    figure.note(
        "Overhead = a run's wall time in the runtime minus the time inside the model calls, divided by "
        "its think and act steps (the observe step and the run's start and finish are spread over them); "
        f"{args.p1_runs} runs per size after {args.p1_warmup} warm-up runs, one at a time, in this process."
    )
    figure.note(
        f"A zero-latency model call through the platform's OpenAI adapter took {fmt_ms(summary(model_per_call)['p50'])} "
        "(median; SDK request building and parsing plus the loopback round trip) and is not counted as overhead."
    )
    if slope is not None:
        figure.note(
            f"Per added step the runtime spends {slope:.2f} ms; the rest of the single-round median is the fixed "
            f"cost of claiming, starting and finishing a run ({figure.details['fixed_cost_per_run_ms']} ms per run)."
        )
    figure.note(
        f"Queries per run for {rounds_list} rounds: {[queries[r][0] for r in rounds_list]}; each added step "
        f"adds {increments} queries (BEGIN/COMMIT/SAVEPOINT included), so the count per step is "
        f"{'constant' if constant else 'NOT constant'}. The SQL floor is that many `SELECT 1` round trips "
        f"({select_one:.3f} ms each)."
    )
    return figure


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} ms"
