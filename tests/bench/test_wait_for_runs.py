"""The bench's wait for runs (bench.data.wait_for_runs) tells a slow batch from a stalled one.

A worker's threads take their pooled connections in turn, so a batch of runs advances in
step and its first run may end only after a quick figure's stall limit (issue #16: P3 quick
given up with 60 runs running and none ended). Steps written are progress; a wait with
neither steps nor ends for the limit is a stall.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from bench.data import wait_for_runs
from executions.models import Execution, ExecutionStep

pytestmark = pytest.mark.django_db(transaction=True)


def test_steps_written_keep_the_wait_going_until_the_run_ends(org, make_agent):
    agent = make_agent()
    run = Execution.objects.create(
        organization=org, agent=agent, agent_version=agent.current_version, input={"task": "t"}, status="running"
    )

    def advance() -> None:
        # A step every 0.2 s for 1.6 s - longer than the 0.6 s stall limit - then the end.
        try:
            for number in range(1, 9):
                time.sleep(0.2)
                ExecutionStep.objects.create(execution=run, step_number=number, step_type="think")
            Execution.objects.filter(pk=run.pk).update(status="completed")
        finally:
            connection.close()

    writer = threading.Thread(target=advance)
    writer.start()
    try:
        waited = wait_for_runs(agent.pk, 1, stall_seconds=0.6, timeout=20)
    finally:
        writer.join(10)
    assert waited["finished"] == 1 and not waited["stalled"]
    assert waited["first_end_s"] is not None and waited["first_end_s"] >= 1.4


def test_no_step_and_no_end_is_a_stall(org, make_agent):
    agent = make_agent()
    run = Execution.objects.create(
        organization=org, agent=agent, agent_version=agent.current_version, input={"task": "t"}, status="running"
    )
    ExecutionStep.objects.create(execution=run, step_number=1, step_type="think")
    began = time.monotonic()
    waited = wait_for_runs(agent.pk, 1, stall_seconds=0.5, timeout=20)
    assert waited["stalled"] and not waited["timed_out"]
    assert waited["finished"] == 0 and waited["steps"] == 1 and waited["first_end_s"] is None
    assert time.monotonic() - began < 5
