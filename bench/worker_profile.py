"""Where a worker's CPU per run goes: ``run_execution`` under cProfile, in this process.

    python -m bench.worker_profile --runs 300 --output bench/results/2026-12-06-worker-profile.txt

The runs are P1's (bench/p1_step_overhead.py): the bench agent, one tool round (two model
calls, one tool call), ``executions.runtime.loop.run_execution`` called one run after the
other against the fake provider at zero latency, after warm-up runs (imports, SDK client,
caches). The profile covers the run loop only: the API request, the queue hop, Celery's task
wrapper and the after-run tasks are not in it (P2 measures them end to end). The model
calls are in it (the SDK's request building and parsing, the loopback round trip): they are
part of a worker's CPU per run.

Writes the top functions by cumulative time and by own time, with this process's CPU per
run measured without the profiler (the profiler's own overhead inflates the profiled figure).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import env

# A regular expression on the file name: this repository's applications.
PLATFORM = r"^" + str(env.ROOT) + r"/(accounts|agents|approvals|billing|config|executions|memory|tools|ops|doors)/"


def _lines(stats: pstats.Stats, sort: str, limit: int, only: str | None = None) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats(sort)
    if only:
        stats.print_stats(only, limit)
    else:
        stats.print_stats(limit)
    # Paths relative to the repository and to site-packages: shorter lines, same meaning.
    text = out.getvalue().replace(str(env.ROOT) + "/", "")
    return text.replace(sys.prefix + "/", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_profile", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="profiled runs (and as many timed without it)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed runs first")
    parser.add_argument("--top", type=int, default=45, help="functions listed per ordering")
    parser.add_argument("--database", default="agentry_bench", help="the bench's own database")
    parser.add_argument("--redis-db", type=int, default=7, help="the bench's own Redis database number")
    parser.add_argument("--output", default=None, help="the text file to write (default: stdout only)")
    parser.add_argument("--dump", default=None, help="also write the raw profile here (pstats/snakeviz)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    env.install_signal_handlers()
    env.configure(database=args.database, redis_db=args.redis_db)
    env.start_django()
    env.flush_redis()
    # Imported once Django is set up (as bench/__main__.py imports each figure): they load models.
    from bench import data  # noqa: PLC0415  (after django.setup(): the platform's models)
    from bench.p1_step_overhead import _start, in_process_runs  # noqa: PLC0415  (after django.setup())
    from executions.models import Execution  # noqa: PLC0415  (after django.setup())
    from executions.runtime.loop import run_execution  # noqa: PLC0415  (after django.setup())

    env.retire_leftover_runs()
    with env.Processes() as procs, in_process_runs():
        url = procs.fake_provider(latency_ms=0)
        env.use_provider_in_process(url)
        owner = data.tenant("bench-runtime")
        agent = data.agent(owner, "worker profile")
        for execution_id in [_start(owner, agent, 1) for _ in range(args.warmup)]:
            run_execution(execution_id)

        # CPU per run without the profiler (this process only: PostgreSQL's work is not in it).
        ids = [_start(owner, agent, 1) for _ in range(args.runs)]
        cpu_ms: list[float] = []
        wall_ms: list[float] = []
        for execution_id in ids:
            started, cpu = time.perf_counter(), time.process_time()
            run_execution(execution_id)
            cpu_ms.append((time.process_time() - cpu) * 1000)
            wall_ms.append((time.perf_counter() - started) * 1000)

        profiled = [_start(owner, agent, 1) for _ in range(args.runs)]
        profiler = cProfile.Profile(time.process_time)  # CPU time: waits on the database are not in it
        started = time.perf_counter()
        profiler.enable()
        for execution_id in profiled:
            run_execution(execution_id)
        profiler.disable()
        profiled_s = time.perf_counter() - started
        statuses: dict[str, int] = {}
        for status in Execution.objects.filter(pk__in=ids + profiled).values_list("status", flat=True):
            statuses[status] = statuses.get(status, 0) + 1
    env.purge_queues()  # the after-run tasks these runs queued; no worker takes them here

    stats = pstats.Stats(profiler)
    total = getattr(stats, "total_tt", 0.0)
    load = os.getloadavg()
    header = [
        "Worker CPU per run: executions.runtime.loop.run_execution under cProfile (bench/worker_profile.py)",
        f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {_commit()}, {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"command: python -m bench.worker_profile {' '.join(sys.argv[1:] if argv is None else argv)}",
        "",
        f"runs: {args.runs} timed without the profiler, then {args.runs} under it, after {args.warmup} warm-up runs;"
        " one tool round each (2 model calls, 1 tool call), fake provider at 0 ms, one at a time in this process",
        f"statuses: {statuses}",
        f"without the profiler: this process's CPU per run median {statistics.median(cpu_ms):.2f} ms"
        f" (p90 {sorted(cpu_ms)[int(len(cpu_ms) * 0.9)]:.2f}), wall per run median {statistics.median(wall_ms):.2f} ms",
        f"under the profiler: {profiled_s * 1000 / args.runs:.2f} ms wall per run, profiled CPU time"
        f" {total * 1000 / args.runs:.2f} ms per run (the profiler's overhead included: read shares, not absolutes)",
        "",
        "Times below are CPU seconds (time.process_time) summed over the profiled runs; divide by the run count for per run.",
    ]
    text = "\n".join(header) + "\n\n"
    text += f"== top {args.top} by cumulative time ==\n" + _lines(stats, "cumulative", args.top)
    text += f"\n== top {args.top} by own time (tottime) ==\n" + _lines(stats, "tottime", args.top)
    # The platform's own functions only (not Django's, psycopg's or the SDK's): where in the
    # run the time above is spent.
    text += f"\n== the platform's functions, top {args.top} by cumulative time ==\n" + _lines(
        stats, "cumulative", args.top, only=PLATFORM
    )
    print(text)
    if args.dump:
        stats.dump_stats(args.dump)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    return 0


def _commit() -> str:
    done = subprocess.run(  # noqa: S603 - git with our own arguments
        ["git", "-C", str(env.ROOT), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
