"""Kill -9 workers, restart Redis, restart PostgreSQL — hundreds of faults at seeded random
step boundaries — and every execution still ends exactly once, with no completed model or
tool call repeated (DESIGN.md §13). The API answers 503 in the error shape while the
database is down, and everything recovers by itself.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from bench.fakes.llm_server import FakeLLMServer
from tests.processes import ROOT
from tests.reliability.infra import DedicatedPostgres, DedicatedRedis, Processes, free_port, run_django
from tests.tooling import NoteReceiver, model_calls_by_task

RUNS = int(os.environ.get("FAULT_RUNS", "140"))
MIN_FAULTS = int(os.environ.get("FAULT_MIN", "400"))
SEED = int(os.environ.get("FAULT_SEED", "20261121"))
BUDGET_SECONDS = int(os.environ.get("FAULT_BUDGET_SECONDS", "600"))

SEED_SCRIPT = """
from agents.services.agents import agent_create
from agents.services.versions import agent_publish
from accounts.access import Actor
from accounts.models import Membership
from accounts.services import api_token_create, organization_bootstrap
org = organization_bootstrap(slug="faults", name="Faults", owner_email="owner@faults.test", password=None)
membership = Membership.objects.select_related("user").get(organization=org)
actor = Actor(organization=org, user=membership.user, membership=membership)
agent = agent_create(actor=actor, data={"name": "Durable", "system_prompt": "Write notes.", "allowed_tools": ["note"],
                                        "limits": {"max_runs_per_hour": 100000, "max_runs_per_day": 100000,
                                                   "timeout_seconds": 3600}})
agent_publish(actor=actor, agent=agent)
_, raw = api_token_create(user=membership.user, organization=org)
print(raw, agent.pk)
"""


@pytest.mark.faults
def test_every_run_ends_exactly_once_under_hundreds_of_faults(request: pytest.FixtureRequest, report_line):
    rng = random.Random(SEED)
    # Not pytest's tmp_path: its root is private to root (0700), and the embedded PostgreSQL
    # runs as its own system user when started by root.
    work = Path(tempfile.mkdtemp(prefix="agentry-faults-"))
    work.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(work, ignore_errors=True))  # runs last
    postgres = DedicatedPostgres(work / "pg")
    request.addfinalizer(postgres.close)
    redis = DedicatedRedis(work)
    request.addfinalizer(redis.kill)
    fake = FakeLLMServer(latency_ms=20).start()
    receiver = NoteReceiver()
    chaos_log = work / "chaos.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "AGENTRY_", "CELERY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=postgres.url,
        REDIS_URL=redis.url,
        OPENAI_BASE_URL=fake.openai_base_url,
        OPENAI_API_KEY="sk-fault-suite",
        AGENTRY_TOOL_PORT="tests.tooling.NoteToolPort",
        NOTE_TOOL_URL=receiver.url,
        EXECUTION_LEASE_SECONDS="1",
        EXECUTION_REQUEUE_PENDING_AFTER_SECONDS="3",
        MEMORY_EXTRACTION_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    processes = Processes(env, work)
    infra: Counter[str] = Counter()
    down_answers: list[dict] = []
    try:
        subprocess_migrate = run_django(
            "from django.core.management import call_command\ncall_command('migrate', verbosity=0)", env
        )
        assert subprocess_migrate == ""
        token, agent_id = run_django(SEED_SCRIPT, env).split()
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        processes.start("web", [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port),
                                "--no-access-log"])  # fmt: skip
        worker_cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "io", "-P", "prefork", "-c", "8",
                      "--without-gossip", "--without-mingle", "--loglevel", "WARNING"]  # fmt: skip
        chaos_env = dict(
            env, AGENTRY_CHAOS=f"{SEED}:{os.environ.get('FAULT_P', '0.4')}", AGENTRY_CHAOS_LOG=str(chaos_log)
        )
        processes.env = chaos_env
        processes.start("worker", worker_cmd)
        processes.env = env
        processes.start("ticker", [sys.executable, str(ROOT / "tests" / "reliability" / "ticker.py")])
        headers = {"Authorization": f"Bearer {token}"}
        client = httpx.Client(base_url=api, headers=headers, timeout=10)
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/api/v1/health/").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "web did not come up"
            time.sleep(0.3)
        ids = []
        for index in range(RUNS):
            response = client.post(f"/api/v1/agents/{agent_id}/execute/", json={"task": f"Note job {index}"})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])

        def finished() -> int:
            with postgres.connect() as conn:
                return conn.execute(
                    "SELECT count(*) FROM executions_execution WHERE status IN "
                    "('completed','failed','cancelled','timed_out')"
                ).fetchone()[0]

        started = time.monotonic()
        while time.monotonic() - started < BUDGET_SECONDS:
            time.sleep(rng.uniform(3.0, 6.0))
            try:
                if finished() == RUNS:
                    break
            except Exception:
                pass
            draw = rng.random()
            if draw < 0.4:
                redis.restart()
                infra["redis_restart"] += 1
            elif draw < 0.8:
                postgres.stop()
                response = client.get("/api/v1/executions/")
                down_answers.append({"status": response.status_code, "body": response.json()})
                postgres.start()
                infra["postgres_restart"] += 1
            else:
                processes.env = chaos_env
                processes.restart("worker")  # SIGKILL to the whole group: main process and pool
                processes.env = env
                infra["worker_main_kill"] += 1
        else:
            with postgres.connect() as conn:
                stuck = conn.execute(
                    "SELECT status, lease_owner <> '', lease_expires_at < now(), count(*) FROM executions_execution "
                    "WHERE status NOT IN ('completed','failed','cancelled','timed_out') GROUP BY 1, 2, 3"
                ).fetchall()
            pytest.fail(f"not every run ended within {BUDGET_SECONDS}s: {finished()}/{RUNS}; unfinished: {stuck}")
    finally:
        processes.stop_all()
        fake.stop()
        receiver.close()

    chaos = Counter(line.split()[1] for line in chaos_log.read_text().splitlines()) if chaos_log.exists() else Counter()
    faults = sum(chaos.values()) + sum(infra.values())
    elapsed = time.monotonic() - started
    report_line(
        f"faults injected: {faults} in {elapsed:.0f}s over {RUNS} runs (seed {SEED}; step boundaries {dict(chaos)}, "
        f"infrastructure {dict(infra)})"
    )
    with postgres.connect() as conn:
        statuses = Counter(s for (s,) in conn.execute("SELECT status FROM executions_execution"))
        steps = conn.execute(
            "SELECT execution_id, string_agg(step_type || ':' || status, ',' ORDER BY step_number) "
            "FROM executions_executionstep GROUP BY execution_id"
        ).fetchall()
        completed_events = Counter(
            str(e) for (e,) in conn.execute(
                "SELECT execution_id FROM executions_platformevent WHERE event_type = 'ai.execution.completed'"
            )
        )  # fmt: skip
        # Resumes that found a step started but not finished: the only calls that may repeat.
        in_flight = Counter(
            kind for (kind,) in conn.execute(
                "SELECT metadata->>'step_type' FROM executions_executionlog "
                "WHERE message LIKE 'Resuming%%' AND metadata->>'status' = 'started'"
            )
        )  # fmt: skip
        total_runs, successful = conn.execute(
            "SELECT total_runs, successful_runs FROM agents_agent WHERE id = %s", [agent_id]
        ).fetchone()

    # Every execution ended, and exactly once.
    assert statuses == {"completed": RUNS}, statuses
    assert (total_runs, successful) == (RUNS, RUNS)
    assert set(completed_events) == set(ids) and set(completed_events.values()) == {1}
    expected = "observe:completed,think:completed,act:completed,think:completed"
    assert {trace for _, trace in steps} == {expected}
    # The tool ran once per run; a key twice only where a resume found that call in flight.
    keys = receiver.by_key()
    assert len(keys) == RUNS
    repeated_tool_calls = sum(n - 1 for n in keys.values())
    assert repeated_tool_calls <= in_flight["act"], (repeated_tool_calls, in_flight)
    # The model: two distinct calls per run; a repeat only for a call cut off in flight.
    per_run = model_calls_by_task(fake)
    assert len(per_run) == RUNS and all(set(calls) == {0, 1} for calls in per_run.values())
    repeated_model_calls = sum(len(calls) - 2 for calls in per_run.values())
    assert repeated_model_calls <= in_flight["think"], (repeated_model_calls, in_flight)
    # While the database was down, the API answered 503 in the error shape.
    assert down_answers and all(a["status"] == 503 for a in down_answers)
    assert all(a["body"]["error"]["code"] == "ServiceUnavailable" for a in down_answers)
    assert faults >= MIN_FAULTS, f"only {faults} faults injected"
