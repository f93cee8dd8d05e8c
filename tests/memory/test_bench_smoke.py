"""The P4 benchmark module still runs (tiny sizes) and measures the application's own SQL."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.django_db


def test_memory_search_benchmark_runs_on_a_tiny_layout():
    from django.db import connection

    from bench import memory_search

    # The test database itself (creating one would wait for a server-wide checkpoint); the
    # benchmark's tables are its own (bench_memory, bench_meta) and dropped afterwards.
    database = connection.settings_dict["NAME"]
    lines: list[str] = []
    try:
        report = memory_search.run(
            memories=600, agents=3, single=800, ladder=[300], queries=12, ef_values=[40, 100],
            database=database, drop=True, log=lines.append,
        )  # fmt: skip
    finally:
        params, _ = memory_search._server_params()
        with psycopg.connect(dbname=database, autocommit=True, **params) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_memory")
            conn.execute("DROP TABLE IF EXISTS bench_meta")
    assert report["rows"] == 600 + 800 + 300 and report["build"]["hnsw_build_seconds"] >= 0
    results = {(r["scenario"], r["path"], r["settings"].split(" ")[0]): r for r in report["results"]}
    spread = results[("spread (3 agents)", "exact", "")]
    assert spread["recall"] == 1.0 and spread["agent_rows"] == 200 and spread["plan"] == "btree+sort"
    single = results[("one agent of 800", "hnsw", "ef_search=100")]
    assert single["recall"] >= 0.9
    assert {"MEMORY_EXACT_SEARCH_MAX_ROWS", "MEMORY_HNSW_EF_SEARCH"} <= set(report["chosen"])
    assert any(line.startswith("chosen:") for line in lines)
