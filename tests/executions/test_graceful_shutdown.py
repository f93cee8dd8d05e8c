"""SIGTERM to a worker: its runs stop at the next step boundary and another worker finishes
them, with nothing repeated and no retry counted (executions/runtime/shutdown.py)."""

from __future__ import annotations

import signal
import time

import pytest

from executions.models import Execution, ExecutionLog
from executions.services import execution_start
from tests.fakes.fixtures import worker_env_for
from tests.processes import celery_worker, wait_for
from tests.tooling import NoteReceiver

pytestmark = pytest.mark.django_db(transaction=True)

RUNS = 4
LATENCY_MS = 1500


def test_sigterm_hands_runs_back_and_another_worker_finishes_them(org, make_agent, providers_at_fake):
    fake = providers_at_fake
    fake.latency_ms = LATENCY_MS
    receiver = NoteReceiver()
    env = worker_env_for(fake, AGENTRY_TOOL_PORT="tests.tooling.NoteToolPort", NOTE_TOOL_URL=receiver.url)
    try:
        agent = make_agent(allowed_tools=["note"], limits={"max_runs_per_hour": 1000})
        executions = [execution_start(agent=agent, organization=org, task=f"job {i}")[0] for i in range(RUNS)]
        with celery_worker(queues="io", concurrency=RUNS, extra_env=env) as first:
            wait_for(lambda: len(fake.chat_requests) >= RUNS, 30, message="every run's first model call")
            first.send_signal(signal.SIGTERM)
            began = time.monotonic()
            first.wait(timeout=60)
            stopped_after = time.monotonic() - began
        # The first calls finished and committed, the tools ran, then every run was handed back:
        # the worker did not hold on for the second model call.
        handed_back = ExecutionLog.objects.filter(message__startswith="Handed back at worker shutdown").count()
        assert handed_back == RUNS
        assert stopped_after < 2 * LATENCY_MS / 1000 + 5
        assert len(fake.chat_requests) == RUNS
        assert set(Execution.objects.filter(pk__in=[e.pk for e in executions]).values_list("status", flat=True)) == {
            "running"
        }
        with celery_worker(queues="io", concurrency=RUNS, extra_env=env):
            wait_for(
                lambda: all(Execution.objects.get(pk=e.pk).is_terminal for e in executions),
                60,
                message="the second worker finishing the runs",
            )
        done = [Execution.objects.get(pk=e.pk) for e in executions]
        assert [(e.status, e.retry_count) for e in done] == [("completed", 0)] * RUNS
        for execution in done:
            assert list(execution.steps.values_list("step_type", "status")) == [
                ("observe", "completed"),
                ("think", "completed"),
                ("act", "completed"),
                ("think", "completed"),
            ]
        # Nothing repeated: one tool call per run, two distinct model calls per run.
        assert sorted(receiver.by_key().values()) == [1] * RUNS
        assert len(fake.chat_requests) == 2 * RUNS
    finally:
        receiver.close()
