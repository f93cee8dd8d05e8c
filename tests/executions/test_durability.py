"""Exclusivity, resume after a crash, cancel, durable timers — with real worker processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from bench.fakes.script import text, tool_call
from executions.models import Execution, ExecutionStep
from executions.runtime.lease import claim
from executions.runtime.loop import run_execution
from executions.runtime.tools_port import LocalTool, ToolOutcome, register_local_tool, unregister_local_tool
from executions.services import execution_cancel, execution_start, executions_due
from executions.tasks import tick
from tests.fakes.fixtures import worker_env_for
from tests.processes import celery_worker, wait_for
from tests.tooling import NoteReceiver, model_calls_by_task

pytestmark = pytest.mark.django_db(transaction=True)


def _threads(target, count: int) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = target()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_only_one_of_many_claims_wins(org, make_agent):
    agent = make_agent()
    execution, _ = execution_start(agent=agent, organization=org, task="x")
    results = _threads(lambda: claim(execution.pk, f"w-{threading.get_ident()}") is not None, 8)
    assert results.count(True) == 1


def test_two_workers_racing_for_one_run_call_the_model_once(org, make_agent, providers_at_fake):
    agent = make_agent()
    providers_at_fake.latency_ms = 300
    execution, _ = execution_start(agent=agent, organization=org, task="race me")
    _threads(lambda: run_execution(execution.pk), 2)
    execution.refresh_from_db()
    assert execution.status == "completed"
    assert len(providers_at_fake.chat_requests) == 1
    assert execution.steps.filter(step_type="think").count() == 1


def test_a_pending_run_is_cancelled_at_once(org, make_agent):
    agent = make_agent()
    execution, _ = execution_start(agent=agent, organization=org, task="x")
    execution_cancel(execution=execution)
    execution.refresh_from_db()
    assert execution.status == "cancelled" and execution.error_code == "ExecutionCancelled"
    run_execution(execution.pk)  # a queued task arriving later does nothing
    assert Execution.objects.get(pk=execution.pk).status == "cancelled"
    agent.refresh_from_db()
    assert agent.cancelled_runs == 1 and agent.total_runs == 0
    from config.api.errors import ApiError

    with pytest.raises(ApiError) as excinfo:
        execution_cancel(execution=execution)
    assert excinfo.value.status_code == 409


def test_cancel_during_a_slow_model_call(org, make_agent, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"])
    providers_at_fake.script(tool_call("echo", {"text": "a"}, delay_ms=800), text("never reached"))
    execution, _ = execution_start(agent=agent, organization=org, task="x")
    runner = threading.Thread(target=lambda: (run_execution(execution.pk), connection.close()))
    runner.start()
    # Cancel while the model call is in flight (the fake holds it for 800 ms).
    wait_for(lambda: len(providers_at_fake.chat_requests) == 1, 10, message="the model call")
    execution_cancel(execution=Execution.objects.get(pk=execution.pk))
    runner.join(20)
    execution.refresh_from_db()
    assert execution.status == "cancelled"
    # The call in flight finished; nothing after the cancel ran.
    assert echo_tool == [] and len(providers_at_fake.chat_requests) == 1


def test_an_interrupted_non_idempotent_tool_fails_the_run(org, make_agent, providers_at_fake):
    register_local_tool(LocalTool(name="charge", handler=lambda **kw: {"ok": True}, idempotent=False))
    try:
        agent = make_agent(allowed_tools=["charge"])
        providers_at_fake.script(tool_call("charge", {}))
        execution, _ = execution_start(agent=agent, organization=org, task="x")
        claim(execution.pk, "dead-worker")
        # The dead worker got as far as committing the act step before calling the tool.
        from executions.runtime.loop import Runner

        runner = Runner(Execution.objects.get(pk=execution.pk), "dead-worker")
        runner.start_or_resume()
        runner.think()
        ExecutionStep.objects.create(
            execution=execution, step_number=3, step_type="act", tool_name="charge", tool_call_id="call_1"
        )
        Execution.objects.filter(pk=execution.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert execution.pk in executions_due()
        run_execution(execution.pk)
        execution.refresh_from_db()
        assert execution.status == "failed" and execution.error_code == "ToolInterrupted"
        assert "not idempotent" in execution.error
    finally:
        unregister_local_tool("charge")


def test_wait_tool_parks_the_run_without_a_worker(org, make_agent, providers_at_fake):
    register_local_tool(LocalTool(name="pause", handler=lambda context, seconds: ToolOutcome("wait", wait_seconds=seconds),
                                  parameters={"type": "object", "properties": {"seconds": {"type": "integer"}}}))  # fmt: skip
    try:
        agent = make_agent(allowed_tools=["pause"])
        providers_at_fake.script(tool_call("pause", {"seconds": 1}), text("rested"))
        execution, _ = execution_start(agent=agent, organization=org, task="x")
        run_execution(execution.pk)
        execution.refresh_from_db()
        assert execution.status == "waiting" and execution.wait_until is not None and execution.lease_owner == ""
        run_execution(execution.pk)  # too early: the timer is not due
        assert Execution.objects.get(pk=execution.pk).status == "waiting"
        wait_for(lambda: execution.pk in executions_due(), 5, message="timer due")
        run_execution(execution.pk)
        execution.refresh_from_db()
        assert execution.status == "completed" and execution.output == {"text": "rested"}
        assert len(providers_at_fake.chat_requests) == 2
    finally:
        unregister_local_tool("pause")


@pytest.mark.slow
def test_killed_worker_runs_resume_elsewhere_exactly_once(org, make_agent, providers_at_fake):
    fake = providers_at_fake
    fake.latency_ms = 250
    receiver = NoteReceiver()
    env = worker_env_for(
        fake, AGENTRY_TOOL_PORT="tests.tooling.NoteToolPort", NOTE_TOOL_URL=receiver.url, EXECUTION_LEASE_SECONDS="2"
    )
    try:
        agent = make_agent(allowed_tools=["note"], limits={"max_runs_per_hour": 1000})
        executions = [execution_start(agent=agent, organization=org, task=f"job {i}")[0] for i in range(10)]
        with celery_worker(queues="io", concurrency=4, extra_env=env) as first:
            wait_for(lambda: len(fake.chat_requests) >= 6, 30, message="runs in progress")
            os.killpg(first.pid, signal.SIGKILL)  # main process and pool, no goodbye
            first.wait()
        with celery_worker(queues="io", concurrency=4, extra_env=env):
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                tick()  # beat's job: re-queue runs whose lease expired
                if all(Execution.objects.get(pk=e.pk).is_terminal for e in executions):
                    break
                time.sleep(1)
        done = {e.pk: Execution.objects.get(pk=e.pk) for e in executions}
        assert {e.status for e in done.values()} == {"completed"}, [(e.status, e.error) for e in done.values()]
        interrupted = sum(1 for e in done.values() if e.retry_count > 0)
        assert interrupted >= 1  # the kill really hit runs in flight
        for execution in done.values():
            steps = list(execution.steps.values_list("step_type", "status"))
            assert steps == [
                ("observe", "completed"),
                ("think", "completed"),
                ("act", "completed"),
                ("think", "completed"),
            ]
        # The tool: one key per run; a key twice only for a call in flight at the kill.
        keys = receiver.by_key()
        assert len(keys) == len(executions)
        assert sum(count - 1 for count in keys.values()) <= interrupted
        # The model: per run, two distinct conversations; a repeat only for the call in flight.
        per_run = model_calls_by_task(fake)
        assert len(per_run) == len(executions)
        repeats = sum(len(calls) - len(set(calls)) for calls in per_run.values())
        assert all(set(calls) == {0, 1} for calls in per_run.values())
        assert repeats <= interrupted
    finally:
        receiver.close()


def test_a_committed_final_answer_is_not_asked_for_again(org, make_agent, providers_at_fake):
    agent = make_agent()
    providers_at_fake.script(text("the answer"), text("asked twice"))
    execution, _ = execution_start(agent=agent, organization=org, task="x")
    claim(execution.pk, "dead-worker")
    from executions.runtime.loop import Runner

    runner = Runner(Execution.objects.get(pk=execution.pk), "dead-worker")
    runner.start_or_resume()
    runner.think()  # the answer is committed; the worker dies before the run ends
    Execution.objects.filter(pk=execution.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed" and execution.output == {"text": "the answer"}
    assert len(providers_at_fake.chat_requests) == 1
    assert execution.steps.filter(step_type="think").count() == 1
