"""P7 - a large chain: ``--p7-steps`` (at least 20) steps, each a run of the bench agent.

The reference's load tests ask for a chain of 20+ steps. One Celery worker of the platform
(io and default queues), the fake provider at zero latency. A chain of ``--p7-steps`` steps
(every step the bench agent: one tool call, two model calls; each step's output mapped into
the chain's variables and the previous step's answer given to the next as its context) is run
``--p7-chains`` times, one after the other, through ``chain_execution_start`` (the service the
API calls), and each chain execution waited for.

Measured, from the rows' own timestamps: the chain's wall time (started -> completed), every
step completed, the steps' runs (created -> completed), and the chain engine's own share per
step: (chain wall time - the sum of its steps' run times) / steps, i.e. what handing over
from one step to the next costs (a task per advance, the step's row, the mappings).

Baseline, same run: the same number of runs of the same agent started one after the other
without a chain (each started when the previous completed), so the ratio says what the chain
adds over running its steps by hand.
"""

from __future__ import annotations

import time
from typing import Any

from agents.models import ChainExecution, ChainStepRun
from agents.services.chains import chain_create
from bench import data
from bench.env import Processes, wait_until
from bench.report import Figure, ratio, summary
from executions.chains.services import chain_execution_start
from executions.models import TERMINAL_STATUSES, Execution

TASK = "Look the key up and answer."
MIN_STEPS = 20
CHAIN_DONE = ("completed", "failed", "cancelled", "timed_out")


def _steps(agent: Any, count: int) -> list[dict[str, Any]]:
    steps = []
    for index in range(count):
        step: dict[str, Any] = {
            "id": f"s{index}",
            "agent_id": str(agent.pk),
            "input_mapping": {"task": f"{TASK} (step {index + 1} of {count})"},
            "output_mapping": {f"s{index}": "output.text"},
        }
        if index:
            step["input_mapping"]["previous"] = f"vars.s{index - 1}"
        steps.append(step)
    return steps


def _seconds(start: Any, end: Any) -> float:
    return (end - start).total_seconds()


def one_chain(owner: data.Tenant, chain: Any, timeout: float) -> dict[str, Any]:
    run = chain_execution_start(chain=chain, input={"topic": "bench"}, actor=owner.actor)
    wait_until(
        lambda: ChainExecution.objects.filter(pk=run.pk, status__in=CHAIN_DONE).exists(),
        timeout,
        "the large chain",
        interval=0.05,
    )
    run.refresh_from_db()
    step_runs = list(ChainStepRun.objects.filter(chain_execution=run).order_by("position", "id"))
    executions = {
        e["id"]: e
        for e in Execution.objects.filter(pk__in=[s.execution_id for s in step_runs if s.execution_id]).values(
            "id", "status", "created_at", "completed_at"
        )
    }
    step_seconds = [
        _seconds(e["created_at"], e["completed_at"]) for e in executions.values() if e["completed_at"] is not None
    ]
    wall = _seconds(run.started_at, run.completed_at) if run.started_at and run.completed_at else None
    completed = sum(1 for s in step_runs if s.status == "completed")
    return {
        "status": run.status,
        "error": run.error[:300],
        "steps_completed": completed,
        "wall_s": wall,
        "steps_run_s": sum(step_seconds),
        "step_run_ms": summary([s * 1000 for s in step_seconds]),
        "engine_ms_per_step": (wall - sum(step_seconds)) * 1000 / max(1, len(step_runs)) if wall else None,
    }


def by_hand(owner: data.Tenant, agent: Any, count: int, timeout: float) -> float:
    """The baseline: ``count`` runs one after the other, each started when the last ended."""
    started = time.perf_counter()
    for _ in range(count):
        [execution_id] = data.start_runs(owner, agent, 1, TASK).ids
        wait_until(
            lambda eid=execution_id: Execution.objects.filter(pk=eid, status__in=TERMINAL_STATUSES).exists(),
            timeout,
            "a run by hand",
            interval=0.01,
        )
    return time.perf_counter() - started


def run(args: Any) -> Figure:
    steps = max(MIN_STEPS, args.p7_steps)
    figure = Figure("P7", f"a large chain ({steps} steps, each an agent run) end to end")
    owner = data.tenant("bench-p7")
    with Processes() as procs:
        provider = procs.fake_provider(latency_ms=0)
        procs.worker(queues="io,default", concurrency=4, provider_url=provider)
        agent = data.agent(owner, "P7 step")
        chain = chain_create(
            actor=owner.actor,
            data={"name": f"P7 large chain {agent.pk.hex[:8]}", "steps": _steps(agent, steps), "timeout_seconds": 3600},
        )
        one_chain(owner, chain, timeout=args.p7_timeout)  # warm-up: imports, pools, caches
        results = [one_chain(owner, chain, timeout=args.p7_timeout) for _ in range(args.p7_chains)]
        hand_s = by_hand(owner, agent, steps, timeout=args.p7_timeout)
    figure.details.update({"steps": steps, "chains": results, "by_hand_s": round(hand_s, 3)})
    ok = [r for r in results if r["status"] == "completed" and r["steps_completed"] == steps]
    figure.add(
        "chains completed with every step",
        len(ok),
        unit=f"of {len(results)}",
        target=f"all, {steps} steps each",
        met=len(ok) == len(results),
    )
    if not ok:
        figure.status = "partial"
        figure.note(f"Chains did not complete: {[(r['status'], r['error']) for r in results]}")
        return figure
    walls = sorted(r["wall_s"] for r in ok)
    median_wall = walls[len(walls) // 2]
    figure.add(
        "chain wall time (median)",
        median_wall,
        unit="s",
        baseline=hand_s,
        baseline_label="s for the same runs one after the other, no chain",
        ratio=ratio(median_wall, hand_s),
    )
    engine = sorted(r["engine_ms_per_step"] for r in ok)
    figure.add("chain engine's own time per step (median)", engine[len(engine) // 2], unit="ms")
    figure.add("a step's run, p50", ok[0]["step_run_ms"]["p50"], unit="ms")
    figure.note(
        f"{len(ok)} chain(s) of {steps} steps after one warm-up chain; each step one tool call and two "
        "model calls on the fake at 0 ms; the engine's time is the wall time minus the steps' runs (created -> "
        "completed), so it holds the hand-over and whatever a step does outside its run's own window."
    )
    return figure
