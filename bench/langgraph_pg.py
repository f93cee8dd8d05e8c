"""LGPG - LangGraph's durable peer: the same graph in-process with its PostgreSQL checkpointer.

``bench/langgraph_app/pg_runner.py`` runs in ``.bench-venv-langgraph/`` (with
``langgraph-checkpoint-postgres``): the benchmark graph of LG (model node with the ``lookup``
tool, tool node; two model calls and one tool call against the same fake provider) compiled
with ``AsyncPostgresSaver`` on the bench's PostgreSQL server, in a database of its own
(``<bench database>_langgraph``, created when missing, so its tables never mix with the
platform's). No HTTP server, no queue: the runs are started in the measuring process, so
this is the cheapest durable LangGraph there is - Agentry's P2 additionally crosses an API
request and a queue hop per run.

Measured: runs/s at ``--lgpg-concurrency`` runs in flight with ``durability="sync"`` (each
step's checkpoint committed before the next step: what an Agentry run guarantees) and
LangGraph's default ``"async"``; machine CPU per run of the runner and of PostgreSQL (the
process counters of bench.cpu); P2's runs/s as a ratio to the sync figure (cross-referenced
in bench/__main__.py when both ran).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench import langgraph_compare
from bench.cpu import postmaster_pid, tree_seconds
from bench.env import LOG_DIR, Processes, database_name
from bench.report import Figure

RUNNER = langgraph_compare.APP / "pg_runner.py"


def _dsn() -> str:
    """The bench's server, database ``<bench database>_langgraph`` (created when missing)."""
    url = os.environ["DATABASE_URL"]
    name = f"{database_name()}_langgraph"
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def measure(provider_url: str, dsn: str, *, runs: int, concurrency: int, durability: str) -> dict[str, Any]:
    python = langgraph_compare.VENV / "bin" / "python"
    env = {
        "PATH": f"{langgraph_compare.VENV / 'bin'}:{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108
        "LANG": "C.UTF-8",
        "BENCH_FAKE_OPENAI_URL": provider_url,
        "OPENAI_API_KEY": "sk-fake-bench",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
    }
    postgres = postmaster_pid()
    pg_before = tree_seconds(postgres) if postgres else None
    log = LOG_DIR / f"lgpg-{durability}.log"
    with log.open("w") as stderr:
        cmd = [str(python), str(RUNNER), "--dsn", dsn, "--runs", str(runs), "--concurrency", str(concurrency),
               "--warmup", str(min(concurrency * 2, 20)), "--durability", durability]  # fmt: skip
        done = subprocess.run(  # noqa: S603
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            check=False,
            timeout=900,
        )
    pg_after = tree_seconds(postgres) if postgres else None
    if done.returncode != 0:
        raise RuntimeError(f"pg_runner exited {done.returncode}; see {log}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    ok = result["runs"] or 0
    # PostgreSQL's counters also include the warm-up and the runner's setup/row counts: a
    # slight overstatement, on LangGraph's side.
    pg_ms = None if pg_before is None or pg_after is None or not ok else (pg_after - pg_before) * 1000 / ok
    result["cpu_ms_per_run"] = {
        "langgraph": result["cpu_s"] * 1000 / ok if ok else None,
        "postgresql": pg_ms,
    }
    known = [v for v in result["cpu_ms_per_run"].values() if v is not None]
    result["cpu_ms_per_run"]["total"] = sum(known) if len(known) == 2 else None
    return result


def run(args: Any) -> Figure:
    figure = Figure("LGPG", "the same graph in-process with LangGraph's PostgreSQL checkpointer (the durable peer)")
    try:
        langgraph_compare.ensure_venv()
    except (subprocess.CalledProcessError, OSError) as exc:
        figure.status = "failed"
        figure.note(f"The LangGraph virtualenv could not be installed: {exc}")
        return figure
    dsn = _dsn()
    results: dict[str, dict[str, Any]] = {}
    with Processes() as procs:
        provider = procs.fake_provider(latency_ms=0)
        for durability in ("sync", "async"):
            results[durability] = measure(
                provider, dsn, runs=args.lgpg_runs, concurrency=args.lgpg_concurrency, durability=durability
            )
            print(f"[LGPG] durability={durability}: {results[durability]['runs_per_s']:.1f} runs/s", flush=True)
    sync, lazy = results["sync"], results["async"]
    figure.details = {
        "versions": langgraph_compare.versions(),
        "runs_per_s": sync["runs_per_s"],
        "async_runs_per_s": lazy["runs_per_s"],
        "database": urlsplit(dsn).path.lstrip("/"),
        **{f"durability_{k}": v for k, v in results.items()},
    }
    figure.add("runs/s, durability=sync (committed per step)", sync["runs_per_s"], unit="runs/s")
    figure.add("runs/s, durability=async (its default)", lazy["runs_per_s"], unit="runs/s")
    for name in ("total", "langgraph", "postgresql"):
        label = "machine CPU per run, sync" if name == "total" else f"  CPU per run: {name}"
        figure.add(label, sync["cpu_ms_per_run"][name], unit="ms")
    figure.add("checkpoint rows written per run, sync", sync["checkpoint_rows_per_run"], unit="rows")
    errors = sync["errors"] + lazy["errors"]
    if errors:
        figure.status = "partial"
        figure.note(f"{errors} LangGraph runs failed; samples: {sync['error_samples'] + lazy['error_samples']}")
    figure.note(
        f"LangGraph {figure.details['versions'].get('langgraph', '?')} with langgraph-checkpoint-postgres "
        f"{figure.details['versions'].get('langgraph-checkpoint-postgres', '?')}: {args.lgpg_runs} runs per "
        f"setting, {args.lgpg_concurrency} in flight on one asyncio loop (AsyncPostgresSaver on a psycopg pool "
        f"of {args.lgpg_concurrency}), a new thread per run, database {figure.details['database']} on the "
        "bench's PostgreSQL server. No API and no queue: Agentry's P2 crosses both on every run."
    )
    return figure
