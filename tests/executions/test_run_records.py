"""What a run records about itself: its log at every step, its CPU time and memory, its
events (stored and live), and the payload of ``ai.execution.completed``."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis
from django.conf import settings

from bench.fakes.script import error, text, tool_call
from executions import streaming
from executions.models import Execution, ExecutionEvent, ExecutionLog, PlatformEvent
from executions.runtime.loop import run_execution
from executions.runtime.tools_port import LocalTool, ToolOutcome, register_local_tool, unregister_local_tool
from executions.services import execution_start, executions_due
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def run(agent, org, task="Do it") -> Execution:
    execution, _ = execution_start(agent=agent, organization=org, task=task)
    run_execution(execution.pk)
    execution.refresh_from_db()
    return execution


def log_of(execution) -> list[tuple[str, str]]:
    return list(ExecutionLog.objects.filter(execution=execution).order_by("id").values_list("level", "message"))


def spin(seconds: float) -> None:
    """Burn this thread's CPU for ``seconds`` of its own CPU time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


@pytest.fixture
def burn_tool():
    """``burn``: spends 0.2 s of CPU, then parks the run on a one-second timer."""

    def handler(*, context) -> ToolOutcome:
        spin(0.2)
        return ToolOutcome("wait", wait_seconds=1)

    register_local_tool(LocalTool(name="burn", handler=handler))
    yield
    unregister_local_tool("burn")


@pytest.fixture
def nap_tool():
    """``nap``: sleeps half a second (no CPU of its own)."""
    register_local_tool(LocalTool(name="nap", handler=lambda *, context: time.sleep(0.5) or {"slept": True}))
    yield
    unregister_local_tool("nap")


def test_the_log_has_the_start_every_step_and_the_end(org, make_agent, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"])
    providers_at_fake.script(tool_call("echo", {"text": "ping"}), text("pong"))
    execution = run(agent, org)
    assert execution.status == "completed"
    lines = log_of(execution)
    assert [message for _level, message in lines] == [
        "Run started.",
        "Model openai/gpt-4o answered with 1 tool call(s): echo.",
        "Tool 'echo' completed.",
        "Model openai/gpt-4o answered with its final answer.",
        "Run completed.",
    ]
    started = ExecutionLog.objects.get(execution=execution, message="Run started.")
    assert started.metadata["trigger_type"] == "manual" and started.metadata["model"] == "openai/gpt-4o"
    tool = ExecutionLog.objects.get(execution=execution, message="Tool 'echo' completed.")
    assert tool.metadata["step_number"] == 3 and tool.metadata["status"] == "completed"
    end = ExecutionLog.objects.get(execution=execution, message="Run completed.")
    assert end.metadata["tool_calls"] == 1 and end.metadata["tokens"] == execution.tokens_total


def test_retries_fallbacks_refusals_and_errors_are_logged(org, make_agent, providers_at_fake):
    agent = make_agent(
        allowed_tools=["nothing_here"],
        model_config={
            "provider": "openai",
            "model": "gpt-4o",
            "fallbacks": [{"provider": "anthropic", "model": "claude-sonnet-4-5"}],
        },
    )
    # openai: one 500, then an answer (a retry); then three 500s: anthropic answers (a fallback).
    providers_at_fake.script(
        error(500), tool_call("missing_tool", {}), error(500), error(500), error(500), text("from claude")
    )
    execution = run(agent, org)
    assert execution.status == "completed", execution.error
    lines = log_of(execution)
    assert ("warn", "The model call succeeded after 1 retry(ies).") in lines
    assert any(level == "warn" and m.startswith("Tool 'missing_tool' was refused:") for level, m in lines)
    fallback = ExecutionLog.objects.get(execution=execution, message__startswith="Fell back to anthropic/")
    assert fallback.level == "warn" and fallback.metadata["failed"] == ["openai/gpt-4o: LLMProviderUnavailable"]
    assert execution.steps.filter(step_type="think").first().attempts == 2

    providers_at_fake.script(*[error(500) for _ in range(6)])
    failed = run(agent, org)
    assert failed.status == "failed"
    levels = {m.split(":")[0]: level for level, m in log_of(failed)}
    assert levels["The model call failed"] == "error" and levels["Run failed"] == "error"
    end = ExecutionLog.objects.get(execution=failed, message__startswith="Run failed:")
    assert end.metadata["error_code"] == "ExecutionFailed"


def test_cpu_time_is_accumulated_across_resumes(org, make_agent, providers_at_fake, burn_tool):
    agent = make_agent(allowed_tools=["burn"])
    providers_at_fake.script(tool_call("burn", {}), tool_call("burn", {}), text("done"))
    execution = run(agent, org)
    assert execution.status == "waiting"
    first = execution.cpu_time_ms
    assert first >= 200 and execution.memory_peak_mb > 0  # recorded when the run parked
    for _ in range(2):
        wait_for(lambda: execution.pk in executions_due(), 5, message="timer due")
        run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed"
    # The second resume's 0.2 s is added to the first's, not written over it.
    assert execution.cpu_time_ms >= first + 200


def test_cpu_time_is_the_run_threads_not_the_process(org, make_agent, providers_at_fake, nap_tool):
    agent = make_agent(allowed_tools=["nap"])
    providers_at_fake.script(tool_call("nap", {}), text("rested"))
    stop, burned = threading.Event(), []

    def burner() -> None:
        start = time.thread_time()
        while not stop.is_set():
            spin(0.01)
        burned.append(time.thread_time() - start)

    thread = threading.Thread(target=burner)
    thread.start()
    try:
        execution = run(agent, org)
    finally:
        stop.set()
        thread.join()
    assert execution.status == "completed"
    # Another thread of the process spun the whole time (most of the run is a sleep):
    # the process's CPU time would hold it; the run's does not.
    assert burned[0] * 1000 > 200
    assert execution.cpu_time_ms < burned[0] * 1000


def test_events_stored_and_live(org, make_agent, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"])
    providers_at_fake.script(tool_call("echo", {"text": "x"}), text("done"))
    execution, _ = execution_start(agent=agent, organization=org, task="Go")
    listener = redis.Redis.from_url(settings.REDIS_URL).pubsub()
    listener.subscribe(streaming.channel(execution.pk))
    listener.get_message(timeout=1)  # the subscribe confirmation
    try:
        run_execution(execution.pk)
        live = []
        while (message := listener.get_message(timeout=0.5)) is not None:
            if message["type"] == "message":
                live.append(json.loads(message["data"]))
    finally:
        listener.close()
    stored = list(ExecutionEvent.objects.filter(execution=execution).values_list("event", "data"))
    names = [name for name, _ in stored]
    assert names.index("step_started") < names.index("observe_started") < names.index("observe_completed")
    finished = next(data for name, data in stored if name == "agent_finished")
    assert finished == {"status": "completed", "reason": "final_answer", "error_code": ""}

    started = [e["data"] for e in live if e["event"] == "step_started"]
    assert [(s["step_number"], s["step_type"]) for s in started] == [
        (1, "observe"),
        (2, "think"),
        (3, "act"),
        (4, "think"),
    ]
    assert [e["event"] for e in live].count("observe_started") == 1


def test_agent_finished_says_why_a_run_stopped(org, make_agent, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"], limits={"max_steps_per_run": 1})
    providers_at_fake.script(tool_call("echo", {"text": "x"}), text("never asked"))
    execution = run(agent, org)
    assert execution.status == "failed"
    finished = ExecutionEvent.objects.get(execution=execution, event="agent_finished").data
    assert finished["error_code"] == "MaxStepsExceeded" and "max_steps_per_run=1" in finished["reason"]


def test_the_completed_event_carries_the_reference_fields(org, make_agent, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"])
    providers_at_fake.script(tool_call("echo", {"text": "x"}), text("done"))
    execution = run(agent, org)
    payload = PlatformEvent.objects.get(execution_id=execution.pk, event_type="ai.execution.completed").payload
    assert payload["execution_id"] == str(execution.pk) and payload["agent_id"] == str(agent.pk)
    assert payload["actions_taken"] == [{"step_number": 3, "tool": "echo", "status": "completed"}]
    assert payload["tokens_used"] == execution.tokens_total == payload["tokens"]
    assert payload["duration_ms"] == execution.duration_ms


def test_the_activity_row_keeps_what_the_run_was_asked_and_answered(org, make_agent, providers_at_fake):
    from accounts.models import ActivityLog

    agent = make_agent()
    providers_at_fake.script(text("The answer, with token=abc inside the text."))
    execution = run(agent, org, task="What is the answer? " + "x" * 3000)
    row = ActivityLog.objects.get(target_id=str(execution.pk), action="execution.completed")
    assert row.request_summary["trigger_type"] == "manual"
    assert row.request_summary["task"].startswith("What is the answer?") and len(row.request_summary["task"]) < 1100
    assert row.response_summary == {"output": {"text": "The answer, with token=abc inside the text."}}
