"""``make bench`` / ``python -m bench``: every figure of DESIGN.md §12, with its baselines.

    python -m bench                       # everything, sized for < 30 minutes on 2 cores
    python -m bench --quick               # every figure at tiny sizes (a few minutes)
    python -m bench --only P1,P2          # some figures (FAKE, P1 … P6, LG, LGPG)
    python -m bench --full                # P4 at 1 M x 384 (long), the rest as default
    python -m bench --p2-runs 5000 …      # any size (see --help)

Prints one line per measured value and a table at the end, and writes ``bench/report.md``
and ``bench/report.json``. Exits 1 when a figure could not be measured (a missed target is
reported, not an error).
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import env, report
from bench.report import ratio

FIGURES = {
    "FAKE": "bench.fake_ceiling",
    "P1": "bench.p1_step_overhead",
    "P2": "bench.p2_throughput",
    "P3": "bench.p3_concurrency",
    "P4": "bench.p4_memory",
    "P5": "bench.p5_lists",
    "P6": "bench.p6_latency",
    "LG": "bench.langgraph_compare",
    "P7": "bench.p7_large_chain",
    "P8": "bench.p8_worker_memory",
    "LGPG": "bench.langgraph_pg",
}


def _ints(text: str) -> list[int]:
    return [int(x) for x in str(text).split(",") if x.strip()]


# flag, type, default, --quick value, help
SIZES: list[tuple[str, Any, Any, Any, str]] = [
    ("--fake-clients", _ints, "1,8,32", "8", "keep-alive clients tried against the fake alone"),
    ("--fake-seconds", float, 4.0, 1.5, "seconds per client count"),
    ("--p1-runs", int, 100, 10, "timed runs per number of rounds"),
    ("--p1-warmup", int, 5, 2, "untimed runs first"),
    ("--p1-rounds", _ints, "1,2,4", "1,3", "tool rounds per run (one think + one act step each)"),
    ("--p2-runs", int, 2000, 40, "executions through the API"),
    ("--p2-seconds", float, 150.0, 30.0, "at most this long posting them"),
    ("--p2-clients", int, 16, 4, "concurrent API clients posting them"),
    ("--p2-concurrency", int, 8, 4, "worker threads (io queue)"),
    ("--p2-web-workers", int, 1, 1, "uvicorn worker processes"),
    (
        "--p2-worker-processes",
        int,
        1,
        1,
        "Celery worker processes (threads x --p2-concurrency each); above 1, the same load\n"
        "runs with 1 first, and both are reported side by side",
    ),
    ("--p2-noop", int, 5000, 300, "bare Celery no-op tasks (baseline)"),
    (
        "--web-db-pool",
        int,
        8,
        4,
        "DB_POOL_MAX_SIZE of each web process (P2, P5); 0 turns the pool off (a new connection\n"
        "per request, closed at its end)",
    ),
    ("--p2-sequential", int, 20, 3, "runs one at a time, for the end-to-end latency"),
    ("--p3-runs", int, 2000, 100, "executions with the slow model"),
    ("--p3-concurrency", int, 600, 60, "worker threads"),
    ("--p3-latency-ms", float, 1000.0, 1000.0, "model latency"),
    ("--p3-pool", int, 50, 20, "DB_POOL_MAX_SIZE of the worker (psycopg pool)"),
    ("--p3-baseline-tasks", int, 3000, 100, "sleeping Celery tasks (baseline)"),
    ("--p3-create-seconds", float, 120.0, 30.0, "at most this long starting them"),
    ("--p3-timeout", float, 300.0, 120.0, "longest wait for the runs to finish (s)"),
    (
        "--p3-hold-db",
        int,
        1,
        0,
        "1: also measure with the worker holding its DB connection through model calls\n"
        "(AGENTRY_RELEASE_DB_DURING_MODEL_CALL=0), to show what releasing it buys; 0: do not",
    ),
    ("--p4-memories", int, 100_000, 5_000, "memories spread over --p4-agents agents"),
    ("--p4-agents", int, 100, 10, "agents of the spread layout"),
    ("--p4-single", int, 100_000, 5_000, "memories of the single large agent"),
    ("--p4-ladder", str, "2000,5000,10000,20000,50000", "1000,2000", "sizes of extra agents"),
    ("--p4-queries", int, 200, 30, "queries per scenario"),
    ("--p5-executions", int, 100_000, 2_000, "executions in the list tenant"),
    ("--p5-agents", int, 10_000, 200, "agents in the list tenant"),
    ("--p5-clients", int, 32, 8, "concurrent clients"),
    ("--p5-seconds", float, 20.0, 3.0, "seconds of load per endpoint"),
    ("--p5-web-workers", int, 2, 1, "uvicorn worker processes"),
    ("--p6-approvals", int, 30, 3, "approvals resolved one after the other"),
    ("--p6-cron-samples", int, 10, 3, "one-off schedules fired by beat"),
    ("--p6-cron-minutes", int, 2, 0, "every-minute crontab firings to wait for (0: none)"),
    ("--p7-steps", int, 25, 20, "steps of the large chain (at least 20)"),
    ("--p7-chains", int, 3, 1, "large chains run after the warm-up one"),
    ("--p7-timeout", float, 600.0, 300.0, "longest wait for one chain (s)"),
    ("--p8-waves", int, 10, 4, "waves of runs while the worker's memory is watched"),
    ("--p8-runs", int, 200, 25, "runs per wave"),
    ("--p8-warmup", int, 2, 1, "waves counted as the warm-up"),
    ("--p8-concurrency", int, 8, 4, "worker threads"),
    ("--p8-timeout", float, 600.0, 300.0, "longest wait for one wave (s)"),
    ("--lg-runs", int, 600, 40, "LangGraph runs per setting (zero latency)"),
    ("--lg-clients", int, 32, 8, "concurrent LangGraph clients"),
    ("--lg-jobs", _ints, "1,10,50", "1,10", "--n-jobs-per-worker values (zero latency); 1 is dev's default"),
    ("--lg-slow-jobs", _ints, "200", "20", "--n-jobs-per-worker for the 1 s-latency comparison with P3"),
    ("--lg-slow-runs", int, 600, 40, "LangGraph runs with the slow model"),
    ("--lg-sequential", int, 20, 3, "LangGraph runs one at a time, for the overhead per step"),
    ("--lgpg-runs", int, 600, 40, "LangGraph runs with the PostgreSQL checkpointer, per durability"),
    ("--lgpg-concurrency", int, 16, 4, "LangGraph runs in flight with the PostgreSQL checkpointer"),
]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", default="", help=f"comma-separated figures of {list(FIGURES)}")
    parser.add_argument("--skip", default="", help="comma-separated figures to leave out")
    parser.add_argument("--quick", action="store_true", help="tiny sizes everywhere (smoke test)")
    parser.add_argument("--full", action="store_true", help="P4 at 1 M x 384 (memory_search --full)")
    parser.add_argument("--database", default="agentry_bench", help="the bench's own database")
    parser.add_argument("--redis-db", type=int, default=7, help="the bench's own Redis database number")
    parser.add_argument(
        "--reset-db",
        action="store_true",
        help="drop and recreate the bench's database first (after migrations changed; P5 seeds again)",
    )
    parser.add_argument("--output", default=None, help="directory of report.md/report.json (default: bench/)")
    for flag, kind, default, quick, text in SIZES:
        parser.add_argument(flag, type=kind, default=None, help=f"{text} (default {default}; --quick {quick})")
    args = parser.parse_args(argv)
    for flag, kind, default, quick, _ in SIZES:
        dest = flag.lstrip("-").replace("-", "_")
        if getattr(args, dest) is None:
            value = quick if args.quick else default
            setattr(args, dest, kind(value) if isinstance(value, str) and kind is not str else value)
    wanted = [k.strip().upper() for k in args.only.split(",") if k.strip()] or list(FIGURES)
    skipped = {k.strip().upper() for k in args.skip.split(",") if k.strip()}
    unknown = [k for k in [*wanted, *skipped] if k not in FIGURES]
    if unknown:
        parser.error(f"unknown figures {unknown}; choose from {list(FIGURES)}")
    args.figures = [k for k in FIGURES if k in wanted and k not in skipped]
    return args


def cross_reference(figures: dict[str, Any]) -> None:
    """The targets that compare figures with each other (P2 and P3 against LangGraph)."""
    fake = figures.get("FAKE")
    ceiling = fake.details.get("ceiling_requests_per_s") if fake is not None else None
    if ceiling:
        needs = {}
        if "P2" in figures and figures["P2"].details.get("model_requests_per_s"):
            needs["P2"] = figures["P2"].details["model_requests_per_s"]
        if "LG" in figures and figures["LG"].details.get("best_runs_per_s"):
            needs["LG"] = 2 * figures["LG"].details["best_runs_per_s"]
        for key, need in needs.items():
            fake.note(f"{key} asked the fake for {need:.0f} model calls/s: {need / ceiling:.0%} of its ceiling.")
        fake.details["needs_requests_per_s"] = needs
    _versus_durable_peer(figures)
    lg = figures.get("LG")
    if lg is None or lg.status == "failed":
        return
    p1 = figures.get("P1")
    lg_step = lg.details.get("overhead_per_step_ms")
    if p1 is not None and lg_step and p1.metrics and p1.metrics[0].value is not None:
        value = p1.metrics[0].value
        p1.add(
            "overhead per step vs LangGraph server (1 job, back to back)",
            value,
            unit="ms",
            baseline=lg_step,
            baseline_label="ms LangGraph per step",
            ratio=ratio(value, lg_step),
        )
    best_fast = lg.details.get("best_runs_per_s")
    best_slow = lg.details.get("slow_best_runs_per_s")
    p2, p3 = figures.get("P2"), figures.get("P3")
    if p2 is not None and best_fast and p2.details.get("runs_per_s"):
        value = ratio(p2.details["runs_per_s"], best_fast)
        p2.add(
            "runs/s vs LangGraph dev (best setting)",
            p2.details["runs_per_s"],
            unit="runs/s",
            target="≥ 2x LangGraph",
            met=value is not None and value >= 2,
            baseline=best_fast,
            baseline_label="LangGraph runs/s",
            ratio=value,
        )
    default_fast = lg.details.get("default_runs_per_s")
    if p2 is not None and default_fast and p2.details.get("runs_per_s"):
        value = ratio(p2.details["runs_per_s"], default_fast)
        p2.add(
            "runs/s vs LangGraph dev (its default, 1 job)",
            p2.details["runs_per_s"],
            unit="runs/s",
            target="≥ 2x LangGraph",
            met=value is not None and value >= 2,
            baseline=default_fast,
            baseline_label="LangGraph runs/s",
            ratio=value,
        )
    if p3 is not None and best_slow and p3.details.get("runs_per_s"):
        value = ratio(p3.details["runs_per_s"], best_slow)
        p3.add(
            "throughput vs LangGraph's best (1 s latency)",
            p3.details["runs_per_s"],
            unit="runs/s",
            target="≥ 3x LangGraph",
            met=value is not None and value >= 3,
            baseline=best_slow,
            baseline_label="LangGraph runs/s",
            ratio=value,
        )


def _versus_durable_peer(figures: dict[str, Any]) -> None:
    """P2 beside LangGraph in-process with its PostgreSQL checkpointer (LGPG), as a ratio."""
    peer, p2 = figures.get("LGPG"), figures.get("P2")
    if peer is None or p2 is None or peer.status == "failed" or not p2.details.get("runs_per_s"):
        return
    for key, label in (("runs_per_s", "durability=sync"), ("async_runs_per_s", "durability=async")):
        if peer.details.get(key):
            p2.add(
                f"runs/s vs LangGraph + PostgreSQL checkpointer in-process ({label})",
                p2.details["runs_per_s"],
                unit="runs/s",
                baseline=peer.details[key],
                baseline_label="LangGraph runs/s",
                ratio=ratio(p2.details["runs_per_s"], peer.details[key]),
            )


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)

    env.install_signal_handlers()
    env.configure(database=args.database, redis_db=args.redis_db, reset=args.reset_db)
    env.start_django()
    env.flush_redis()

    meta: dict[str, Any] = {
        "date": report.now_iso(),
        "command": "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv),
        "machine": report.machine(),
        "database": env.database_name(),
        "sizes": {k: v for k, v in vars(args).items() if k not in {"figures"}},
    }
    print(f"bench: database {meta['database']}, figures {args.figures}, quick={args.quick}", flush=True)
    started = time.perf_counter()
    done: dict[str, report.Figure] = {}
    interrupted = False
    try:
        for key in args.figures:
            clock = report.Clock()
            print(f"\n== {key} ==", flush=True)
            retired = env.retire_leftover_runs()
            if retired:
                print(f"[{key}] cancelled {retired} unfinished runs left by earlier figures", flush=True)
            try:
                module = importlib.import_module(FIGURES[key])
                figure = module.run(args)
            except Exception as exc:  # one figure failing must not lose the others
                traceback.print_exc()
                figure = report.Figure(key, FIGURES[key], status="failed")
                figure.note(f"Could not be measured: {type(exc).__name__}: {exc}")
            finally:
                env.purge_queues()
            figure.seconds = clock.seconds
            done[key] = figure
            for metric in figure.metrics:
                print(report.metric_line(figure, metric), flush=True)
            print(f"[{key}] {figure.status} in {figure.seconds:.0f} s", flush=True)
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM/SIGHUP (bench.env's handlers)
        interrupted = True
        print("\ninterrupted: writing what was measured", flush=True)
    finally:
        env.stop_everything()
    cross_reference(done)
    meta["duration_s"] = time.perf_counter() - started
    figures = list(done.values())
    print("\n" + report.text_table(figures), flush=True)

    directory = Path(args.output) if args.output else report.HERE
    directory.mkdir(parents=True, exist_ok=True)
    md_path, json_path = report.write(figures, meta, directory)
    print(f"\nwrote {md_path} and {json_path} ({meta['duration_s'] / 60:.1f} min)", flush=True)
    if interrupted:
        return 130
    return 1 if any(f.status == "failed" for f in figures) or len(figures) < len(args.figures) else 0


if __name__ == "__main__":
    sys.exit(main())
