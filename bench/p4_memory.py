"""P4 - memory search, top-10 within one agent: the memory benchmark, run from here.

``bench.memory_search`` (the memory app's benchmark) loads structured 384-dimension vectors
into its own database (``agentry_bench_memory``), runs the application's search statement
on the exact and HNSW paths and computes recall@10 against exact search. ``make bench`` runs
it at ``--p4-memories`` over ``--p4-agents`` agents plus one agent of ``--p4-single`` (sized
for the time budget); ``--full`` runs the target's size: 1 M over 500 agents and 1 M in one
agent (about an hour to load and index on 2 cores). A loaded layout is reused by later runs.

Baseline, same run: the exact scan of the large agent (the true top-10, what HNSW is
measured against), and its p99.
"""

from __future__ import annotations

import inspect
from typing import Any

from bench import memory_search
from bench.report import Figure, ratio

TARGET_P99_MS = 15.0
TARGET_RECALL = 0.95
FULL = {
    "memories": 1_000_000,
    "agents": 500,
    "single": 1_000_000,
    "ladder": [5000, 10000, 20000, 50000, 100000],
    "queries": 500,
}


def run(args: Any) -> Figure:
    if args.full:
        sizes = dict(FULL)
    else:
        sizes = {
            "memories": args.p4_memories,
            "agents": args.p4_agents,
            "single": args.p4_single,
            "ladder": [int(x) for x in str(args.p4_ladder).split(",") if x.strip()],
            "queries": args.p4_queries,
        }
    figure = Figure(
        "P4",
        f"memory search: {sizes['memories']:,} memories over {sizes['agents']} agents, one agent of "
        f"{sizes['single']:,} (384 dims)",
    )
    kwargs: dict[str, Any] = {**sizes, "ef_values": [40, 64, 100, 200], "log": lambda line: print(f"[P4] {line}")}
    accepted = inspect.signature(memory_search.run).parameters
    report = memory_search.run(**{k: v for k, v in kwargs.items() if k in accepted})
    chosen = report.get("chosen", {})
    spread = chosen.get("spread_exact") or {}
    single = chosen.get("single_hnsw") or {}
    large_exact = next(
        (
            m
            for m in report.get("results", [])
            if str(m.get("scenario", "")).startswith("one agent") and m.get("path") == "exact"
        ),
        {},
    )
    figure.details = {"memory_search": report}
    figure.add(
        f"spread ({sizes['agents']} agents) p99, exact path",
        spread.get("p99_ms"),
        unit="ms",
        target=f"<= {TARGET_P99_MS:g} ms, recall >= {TARGET_RECALL}",
        met=bool(spread) and spread["p99_ms"] <= TARGET_P99_MS and spread.get("recall", 0) >= TARGET_RECALL,
    )
    figure.add(
        f"one agent of {sizes['single']:,} p99, HNSW ({single.get('settings', '').split(' ')[0]})",
        single.get("p99_ms"),
        unit="ms",
        target=f"<= {TARGET_P99_MS:g} ms",
        met=bool(single) and single["p99_ms"] <= TARGET_P99_MS,
        baseline=large_exact.get("p99_ms"),
        baseline_label="ms p99 exact scan",
        ratio=ratio(single.get("p99_ms"), large_exact.get("p99_ms")),
    )
    figure.add(
        "recall@10 of that HNSW search",
        single.get("recall"),
        target=f">= {TARGET_RECALL}",
        met=bool(single) and single["recall"] >= TARGET_RECALL,
    )
    figure.note(
        f"Chosen by the memory benchmark: MEMORY_EXACT_SEARCH_MAX_ROWS={chosen.get('MEMORY_EXACT_SEARCH_MAX_ROWS')}, "
        f"MEMORY_HNSW_EF_SEARCH={chosen.get('MEMORY_HNSW_EF_SEARCH')}; build {report.get('build')}."
    )
    if not args.full:
        figure.status = "partial"
        figure.note(
            f"Measured at {report.get('rows', 0):,} rows, not the target's 1 M x 384 (which takes about an hour to "
            "load and index on 2 cores): run `python -m bench --only P4 --full` for the target's size."
        )
    return figure
