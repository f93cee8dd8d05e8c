"""LGPG's runner: the benchmark graph (graph.py) run in-process with LangGraph's PostgreSQL
checkpointer (``langgraph-checkpoint-postgres``) - LangGraph's durable peer of an Agentry run.

Runs inside ``.bench-venv-langgraph/`` (bench/langgraph_pg.py starts it): ``--runs`` runs of
the graph, ``--concurrency`` at a time on one asyncio loop, each on a new thread so every
run writes its own checkpoints, with ``durability`` ``sync`` (each step's checkpoint
committed before the next step starts: the guarantee an Agentry run gives) or LangGraph's
default ``async`` (written while the next step runs). Prints one JSON line: runs, seconds,
runs/s, this process's CPU seconds, the model calls' time per run, checkpoint rows written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
import uuid
from pathlib import Path

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from graph import builder  # graph.py reads the fake's URL from the environment

INPUT = {"messages": [{"role": "user", "content": "Look the key up and answer."}]}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _rows(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        tables = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        total = 0
        for table in tables:
            row = await (await conn.execute(f"SELECT count(*) AS n FROM {table}")).fetchone()  # noqa: S608
            total += int(row["n"])
        return total


async def main(args: argparse.Namespace) -> dict:
    # The settings the checkpointer's documentation asks for on a pool it does not own.
    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    async with AsyncConnectionPool(args.dsn, min_size=1, max_size=args.concurrency, kwargs=kwargs, open=False) as pool:
        await pool.open(wait=True)
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        graph = builder.compile(checkpointer=saver)
        model_ms: list[float] = []
        errors: list[str] = []

        async def one() -> None:
            config = {"configurable": {"thread_id": str(uuid.uuid4())}}
            try:
                state = await graph.ainvoke(INPUT, config=config, durability=args.durability)
                model_ms.append(float(state.get("model_ms") or 0.0))
            except Exception as exc:  # counted and shown, never silently dropped
                errors.append(f"{type(exc).__name__}: {exc}"[:200])

        async def worker(queue: asyncio.Queue) -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await one()

        async def batch(count: int) -> None:
            queue: asyncio.Queue = asyncio.Queue()
            for _ in range(count):
                queue.put_nowait(None)
            await asyncio.gather(*(worker(queue) for _ in range(args.concurrency)))

        await batch(args.warmup)
        model_ms.clear()
        rows_before = await _rows(pool)
        cpu_before, started = _cpu_seconds(), time.perf_counter()
        await batch(args.runs)
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        rows_after = await _rows(pool)
    ok = len(model_ms)
    return {
        "runs": ok,
        "errors": len(errors),
        "error_samples": errors[:3],
        "seconds": seconds,
        "runs_per_s": ok / seconds if seconds else None,
        "cpu_s": cpu,
        "model_ms_per_run": sum(model_ms) / ok if ok else None,
        "checkpoint_rows_per_run": (rows_after - rows_before) / ok if ok else None,
        "durability": args.durability,
        "concurrency": args.concurrency,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--durability", choices=("sync", "async", "exit"), default="sync")
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
