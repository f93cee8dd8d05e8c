"""LG - the same single-tool agent on a LangGraph agent server, side by side.

``langgraph dev`` (the in-memory runtime, from ``langgraph-cli[inmem]``) serves
``bench/langgraph_app/graph.py``: a model node with the ``lookup`` tool bound
(``langchain-openai``'s ChatOpenAI pointed at the same fake provider), a tool node, looping
until the model answers without tool calls - two model calls and one tool call, like the
Agentry runs. It is installed in its own virtualenv, ``.bench-venv-langgraph/`` (created
here when missing, from PyPI), never in the platform's; no key and no network beyond
loopback are needed.

Measured, each against a fresh server:
- runs per second at its default (``--n-jobs-per-worker`` is 1 in dev mode, whatever its
  ``--help`` says) and at each ``--lg-jobs`` value, zero-latency model; clients
  (``POST /runs/wait``, stateless runs, keep-alive) at least as many as jobs;
- the overhead per step: with one job kept busy by the clients, the wall time per run minus
  its model calls' time (the graph adds it to the state as ``model_ms``), over its three node
  executions; and one run at a time (the client's round trip, which includes the in-memory
  queue's idle poll: it sleeps 0.5 s when it found nothing to run);
- runs per second with the slow model (``--p3-latency-ms``) at ``--lg-slow-jobs``, for P3.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import load
from bench.env import ROOT, Processes, free_port, http_ok
from bench.report import Figure, summary

VENV = ROOT / ".bench-venv-langgraph"
APP = Path(__file__).resolve().parent / "langgraph_app"
# The checkpointer and its driver are LGPG's (bench/langgraph_pg.py): LangGraph's durable peer.
PACKAGES = [
    "langgraph-cli[inmem]",
    "langchain-openai",
    "langgraph-checkpoint-postgres",
    "psycopg[binary]",
    "psycopg-pool",
]
REFERENCE_RUNS_PER_S = 50.0  # DESIGN.md §12, measured before with its defaults
REFERENCE_SLOW_RUNS_PER_S = 35.8  # DESIGN.md §12, 200 jobs, 1 s latency
INPUT = {"messages": [{"role": "user", "content": "Look the key up and answer."}]}
STEPS = 3  # agent, tools, agent


def ensure_venv(log=print) -> Path:
    """The LangGraph virtualenv, created and filled when missing; returns its ``langgraph``."""
    binary = VENV / "bin" / "langgraph"
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if binary.exists():
        # A virtualenv made before LGPG existed lacks the checkpointer: added, once.
        probe = [str(VENV / "bin" / "python"), "-c", "import langgraph.checkpoint.postgres, psycopg_pool"]
        if subprocess.run(probe, capture_output=True, check=False).returncode != 0:  # noqa: S603
            log(f"[LG] adding {PACKAGES[2:]} to {VENV.name}/ (once)")
            subprocess.run([*pip, *PACKAGES[2:]], check=True)  # noqa: S603
        return binary
    log(f"[LG] creating {VENV.name}/ with {PACKAGES} (once)")
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)  # noqa: S603
    subprocess.run([*pip, "--upgrade", "pip"], check=True)  # noqa: S603
    subprocess.run([*pip, *PACKAGES], check=True)  # noqa: S603
    return binary


def versions() -> dict[str, str]:
    out = subprocess.run(  # noqa: S603
        [str(VENV / "bin" / "python"), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    wanted = ("langgraph", "langgraph-api", "langgraph-cli", "langgraph-runtime-inmem", "langchain-openai", "openai",
              "langgraph-checkpoint-postgres", "psycopg")  # fmt: skip
    pairs = dict(line.split("==", 1) for line in out.splitlines() if "==" in line)
    return {name: pairs[name] for name in wanted if name in pairs}


def server(procs: Processes, binary: Path, provider_url: str, jobs: int | None) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(binary), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port),
           "--config", str(APP / "langgraph.json")]  # fmt: skip
    if jobs is not None:
        cmd += ["--n-jobs-per-worker", str(jobs)]
    env = {
        "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108
        "LANG": "C.UTF-8",
        "BENCH_FAKE_OPENAI_URL": provider_url,
        "OPENAI_API_KEY": "sk-fake-bench",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LOG_LEVEL": "WARNING",
    }
    procs.start(f"langgraph-{jobs or 'default'}-{port}", cmd, env=env, cwd=APP, ready=lambda: http_ok(url + "/ok"))
    return url


async def _run_wait(connection: load.Connection, client: int, number: int) -> tuple[int, Any]:
    response = await connection.request("POST", "/runs/wait", {"assistant_id": "agent", "input": INPUT})
    if response.status != 200:
        return response.status, response.body[:200]
    return response.status, float(response.json().get("model_ms") or 0.0)


def throughput(url: str, *, runs: int, clients: int) -> dict[str, Any]:
    load.run(load.closed_loop(url, _run_wait, clients=min(clients, 8), total=min(clients, 8) * 2))  # warm-up
    result = load.run(load.closed_loop(url, _run_wait, clients=clients, total=runs))
    model_ms = [s.data for s in result.ok if isinstance(s.data, float)]
    # Back to back on one job, a run's share of the wall clock minus its model calls is what
    # the server spends on it; per node execution (3 per run).
    per_step = None
    if result.ok and model_ms:
        per_step = (result.elapsed_s * 1000 / len(result.ok) - sum(model_ms) / len(model_ms)) / STEPS
    return {
        "overhead_per_step_ms_at_saturation": per_step,
        "model_ms_per_run": summary(model_ms),
        "runs": len(result.ok),
        "errors": result.errors,
        "error_samples": [s.data for s in result.samples if s.status != 200][:3],
        "clients": clients,
        "runs_per_s": round(result.rate, 1),
        "latency_ms": summary(result.latencies()),
        "seconds": round(result.elapsed_s, 2),
    }


def sequential(url: str, count: int) -> dict[str, Any]:
    totals, per_step = [], []
    with httpx.Client(base_url=url, timeout=60) as client:
        client.post("/runs/wait", json={"assistant_id": "agent", "input": INPUT}).raise_for_status()
        for _ in range(count):
            started = time.perf_counter()
            response = client.post("/runs/wait", json={"assistant_id": "agent", "input": INPUT})
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            model_ms = float(response.json().get("model_ms") or 0.0)
            totals.append(elapsed)
            per_step.append((elapsed - model_ms) / STEPS)
    return {"runs": count, "latency_ms": summary(totals), "overhead_per_step_ms": summary(per_step)}


def run(args: Any) -> Figure:
    figure = Figure("LG", "the same agent on a LangGraph server (langgraph dev, in-memory runtime)")
    try:
        binary = ensure_venv()
    except (subprocess.CalledProcessError, OSError) as exc:
        figure.status = "failed"
        figure.note(f"The LangGraph virtualenv could not be installed: {exc}")
        return figure
    fast: dict[str, Any] = {}
    slow: dict[str, Any] = {}
    seq: dict[str, Any] = {}
    with Processes() as procs:
        provider = procs.fake_provider(latency_ms=0)
        for jobs in [None, *[j for j in args.lg_jobs if j != 1]]:
            label = "default (1)" if jobs is None else str(jobs)
            with Processes() as lg:
                url = server(lg, binary, provider, jobs)
                if jobs is None:
                    seq = sequential(url, args.lg_sequential)
                fast[label] = throughput(url, runs=args.lg_runs, clients=max(args.lg_clients, jobs or 1))
            print(f"[LG] n-jobs {label}: {fast[label]['runs_per_s']:.1f} runs/s", flush=True)
    with Processes() as procs:
        provider = procs.fake_provider(latency_ms=args.p3_latency_ms)
        for jobs in args.lg_slow_jobs:
            with Processes() as lg:
                url = server(lg, binary, provider, jobs)
                slow[str(jobs)] = throughput(url, runs=args.lg_slow_runs, clients=max(args.lg_clients, jobs))
            print(f"[LG] n-jobs {jobs}, {args.p3_latency_ms:g} ms model: {slow[str(jobs)]['runs_per_s']:.1f} runs/s")
    default = fast.get("default (1)", {}).get("runs_per_s")
    best_label = max(fast, key=lambda k: fast[k]["runs_per_s"])
    best = fast[best_label]["runs_per_s"]
    slow_label = max(slow, key=lambda k: slow[k]["runs_per_s"]) if slow else None
    slow_best = slow[slow_label]["runs_per_s"] if slow_label else None
    figure.details = {
        "versions": versions(),
        "default_runs_per_s": default,
        "best_runs_per_s": best,
        "best_jobs": best_label,
        "slow_best_runs_per_s": slow_best,
        "slow_best_jobs": slow_label,
        "zero_latency": fast,
        "slow_model": slow,
        "sequential": seq,
    }
    figure.add(
        "runs/s, its default (1 job per worker)",
        default,
        unit="runs/s",
        baseline=REFERENCE_RUNS_PER_S,
        baseline_label="DESIGN's earlier figure",
    )
    figure.add(f"runs/s, best of n-jobs {args.lg_jobs}", best, unit="runs/s")
    saturated = fast.get("default (1)", {}).get("overhead_per_step_ms_at_saturation")
    figure.details["overhead_per_step_ms"] = saturated
    figure.add("overhead per step (1 job, back to back)", saturated, unit="ms")
    figure.add("round trip of one run alone (p50)", seq["latency_ms"]["p50"], unit="ms")
    if slow_best is not None:
        figure.add(
            f"runs/s with {args.p3_latency_ms:g} ms model, n-jobs {slow_label}",
            slow_best,
            unit="runs/s",
            baseline=REFERENCE_SLOW_RUNS_PER_S,
            baseline_label="DESIGN's earlier figure",
        )
    errors = sum(r["errors"] for r in [*fast.values(), *slow.values()])
    if errors:
        figure.status = "partial"
        figure.note(f"{errors} LangGraph requests failed; samples: {[r['error_samples'] for r in fast.values()]}")
    figure.note(
        f"langgraph dev ({figure.details['versions']}), stateless POST /runs/wait over keep-alive connections, "
        f"{args.lg_runs} runs per setting at zero latency, {args.lg_slow_runs} with the slow model; "
        + "; ".join(f"n-jobs {k}: {v['runs_per_s']:.1f} runs/s ({v['clients']} clients)" for k, v in fast.items())
        + "."
    )
    figure.note(
        f"Overhead per step: at its default (one job) kept busy, {fmt_ms(saturated)} per node execution (3 per "
        "run: agent, tools, agent) once the model calls' own time is taken out. One run at a time "
        f"({args.lg_sequential} runs) the round trip is {seq['latency_ms']['p50']:.0f} ms (p50): the in-memory "
        "queue sleeps 0.5 s whenever it finds nothing to run, so an idle server picks a run up late."
    )
    return figure


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"
