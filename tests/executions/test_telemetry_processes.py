"""A run's trace across real processes: the API server (uvicorn) that takes the request, the
Celery workers that run it, one of them SIGKILLed mid-run, a person's approval in between.
Each process exports over OTLP/HTTP, configured only by the standard variables, to a receiver
that decodes the protobuf (tests/fakes/otlp_receiver.py).
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest
from django.conf import settings

from approvals.models import ApprovalRequest
from bench.fakes.script import text, tool_call
from executions.models import Execution
from executions.tasks import tick
from tests.fakes.fixtures import FAKE_API_KEY, worker_env_for
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.processes import asgi_server, celery_worker, wait_for
from tests.tooling import NoteReceiver
from tests.tools.fixtures import synced_tools  # noqa: F401  (a fixture)
from tools.models import AgentCapabilityGrant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SERVER = 2  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_SERVER


@pytest.fixture
def receiver():
    # Messages left by in-process tests (whose rows are gone) would only slow the workers down.
    from redis import Redis

    Redis.from_url(settings.CELERY_BROKER_URL).delete("io", "default")
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def notes():
    receiver = NoteReceiver()
    yield receiver
    receiver.close()


def _worker_env(fake, receiver: OtlpReceiver, notes: NoteReceiver | None, name: str, **extra: str) -> dict[str, str]:
    """A worker exporting to ``receiver``; with ``notes``, its tools are the ``note`` tool only
    (tests.tooling), else the platform's own (the gateway, approvals included)."""
    tools = {"AGENTRY_TOOL_PORT": "tests.tooling.NoteToolPort", "NOTE_TOOL_URL": notes.url} if notes else {}
    return worker_env_for(
        fake,
        MEMORY_EXTRACTION_ENABLED="0",
        **tools,
        **receiver.env(OTEL_RESOURCE_ATTRIBUTES=f"agentry.process={name}"),
        **extra,
    )


def _execute(base: str, token: str, agent, task: str) -> str:
    answer = httpx.post(
        f"{base}/api/v1/agents/{agent.id}/execute/",
        json={"task": task},
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def _finished(execution_id: str) -> bool:
    return Execution.objects.get(pk=execution_id).is_terminal


def _run_spans(spans: list[ReceivedSpan], execution_id: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.attributes.get("agentry.execution.id") == execution_id]


def _has_run_span(execution_id: str):
    return lambda spans: any(s.name.startswith("invoke_agent") for s in _run_spans(spans, execution_id))


def _run_trace_complete(execution_id: str):
    """The run's span has arrived, and so has every parent in its trace (each process exports
    its spans in batches of its own)."""

    def complete(spans: list[ReceivedSpan]) -> bool:
        runs = [s for s in _run_spans(spans, execution_id) if s.name.startswith("invoke_agent")]
        if not runs:
            return False
        trace = [s for s in spans if s.trace_id == runs[0].trace_id]
        ids = {s.span_id for s in trace}
        return all(s.parent_span_id == "" or s.parent_span_id in ids for s in trace)

    return complete


def _request_span(spans: list[ReceivedSpan], trace_id: str) -> ReceivedSpan:
    (request,) = [s for s in spans if s.trace_id == trace_id and s.kind == SERVER]
    return request


def test_an_api_run_is_one_trace_from_the_request_to_the_answer(
    org, alice, make_agent, providers_at_fake, client_for, receiver, notes
):
    agent = make_agent(name="Noter", allowed_tools=["note"])
    providers_at_fake.script(tool_call("note", {"text": "hello"}), text("noted"))
    token = client_for(alice).raw_token
    env = _worker_env(providers_at_fake, receiver, notes, "worker")
    with (
        asgi_server(receiver.env(OTEL_RESOURCE_ATTRIBUTES="agentry.process=web")) as base,
        celery_worker(queues="io", concurrency=2, extra_env=env),
    ):
        execution_id = _execute(base, token, agent, "Note hello")
        wait_for(lambda: _finished(execution_id), 30, message="the run")
        spans = receiver.wait_for(_has_run_span(execution_id))
    execution = Execution.objects.get(pk=execution_id)
    assert execution.status == "completed"

    run_spans = _run_spans(spans, execution_id)
    (run,) = [s for s in run_spans if s.name.startswith("invoke_agent")]
    request = _request_span(spans, run.trace_id)
    # The tree: the API request (web process) -> the run -> its model and tool calls (worker).
    assert request.resource["agentry.process"] == "web" and request.resource["service.name"] == "agentry-test"
    assert "execute" in request.name and request.parent_span_id == ""
    assert run.parent_span_id == request.span_id and run.name == "invoke_agent Noter"
    assert run.resource["agentry.process"] == "worker"
    assert sorted(s.name for s in run_spans if s is not run) == ["chat gpt-4o", "chat gpt-4o", "execute_tool note"]
    assert all(s.parent_span_id == run.span_id and s.trace_id == run.trace_id for s in run_spans if s is not run)
    assert run.start_ns >= request.start_ns
    assert run.attributes["gen_ai.agent.id"] == str(agent.pk)
    assert run.attributes["agentry.organization.id"] == str(org.pk)
    assert run.attributes["gen_ai.usage.input_tokens"] == execution.tokens_input > 0
    (tool,) = [s for s in run_spans if s.name == "execute_tool note"]
    assert tool.attributes["gen_ai.tool.call.id"] == execution.steps.get(step_type="act").tool_call_id
    # One trace per run: nothing of it elsewhere, and no secret anywhere.
    assert {s.trace_id for s in run_spans} == {request.trace_id}
    everything = repr([(s.name, s.attributes, s.resource) for s in spans])
    assert token not in everything and FAKE_API_KEY not in everything and "Note hello" not in everything
    assert all("authorization" not in key.lower() for s in spans for key in s.attributes)


def test_a_run_resumed_after_its_worker_was_killed_continues_its_trace(
    org, alice, make_agent, providers_at_fake, client_for, receiver, notes
):
    fake = providers_at_fake
    fake.latency_ms = 800
    agent = make_agent(name="Survivor", allowed_tools=["note"])
    token = client_for(alice).raw_token
    with asgi_server(receiver.env()) as base:
        execution_id = _execute(base, token, agent, "Note something")
    first_env = _worker_env(fake, receiver, notes, "first", EXECUTION_LEASE_SECONDS="2")
    with celery_worker(queues="io", concurrency=2, extra_env=first_env) as first:
        # The first model call answered and its tool ran; the second call is in flight.
        wait_for(lambda: len(fake.chat_requests) >= 2, 30, message="the second model call")
        receiver.wait_for(lambda spans: any(s.name == "execute_tool note" for s in spans), 10)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert not _finished(execution_id)
    fake.latency_ms = 0
    with celery_worker(queues="io", concurrency=2, extra_env=_worker_env(fake, receiver, notes, "second")):
        deadline = time.monotonic() + 60
        while not _finished(execution_id) and time.monotonic() < deadline:
            tick()  # beat's job: hand the dead worker's run to a live one
            time.sleep(0.5)
        spans = receiver.wait_for(_has_run_span(execution_id))
    execution = Execution.objects.get(pk=execution_id)
    assert execution.status == "completed" and execution.retry_count >= 1

    run_spans = _run_spans(spans, execution_id)
    (run,) = [s for s in run_spans if s.name.startswith("invoke_agent")]
    request = _request_span(spans, run.trace_id)
    assert run.parent_span_id == request.span_id
    by_process = {s.resource.get("agentry.process") for s in run_spans}
    assert by_process == {"first", "second"}  # both workers wrote into the run's trace
    assert {s.trace_id for s in run_spans} == {request.trace_id}
    assert all(s.parent_span_id == run.span_id for s in run_spans if s is not run)
    assert run.resource["agentry.process"] == "second"
    assert run.attributes["agentry.execution.retry_count"] >= 1
    # The call lost with the first worker was asked again by the second.
    answered = [s for s in run_spans if s.name.startswith("chat") and s.resource["agentry.process"] == "second"]
    assert answered and run.start_ns <= min(s.start_ns for s in run_spans)


def test_a_run_resumed_after_an_approval_continues_its_trace(
    org,
    alice,
    make_agent,
    providers_at_fake,
    client_for,
    receiver,
    synced_tools,  # noqa: F811
):
    agent = make_agent(name="Mailer", allowed_tools=["email_send"])
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["send_emails"])
    asked = {"to": ["everyone@example.test"], "subject": "Refund", "body": "On its way."}
    providers_at_fake.script(tool_call("email_send", asked), text("Sent."))
    token = client_for(alice).raw_token
    env = _worker_env(providers_at_fake, receiver, None, "worker")
    with asgi_server(receiver.env()) as base, celery_worker(queues="default,io", concurrency=2, extra_env=env):
        execution_id = _execute(base, token, agent, "Tell the customer")
        wait_for(lambda: Execution.objects.get(pk=execution_id).status == "waiting_approval", 30)
        approval = ApprovalRequest.objects.get(execution_id=execution_id)
        time.sleep(0.3)  # a wait of some length
        answer = httpx.post(
            f"{base}/api/v1/approvals/{approval.pk}/approve/",
            json={"note": "fine"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=20,
        )
        assert answer.status_code == 200, answer.text
        wait_for(lambda: _finished(execution_id), 30, message="the resumed run")
        spans = receiver.wait_for(_has_run_span(execution_id))
    assert Execution.objects.get(pk=execution_id).status == "completed"

    run_spans = _run_spans(spans, execution_id)
    (run,) = [s for s in run_spans if s.name.startswith("invoke_agent")]
    (waited,) = [s for s in run_spans if s.name == "await_approval email_send"]
    (sent,) = [s for s in run_spans if s.name == "execute_tool email_send"]
    assert {s.trace_id for s in run_spans} == {run.trace_id}
    assert waited.parent_span_id == sent.parent_span_id == run.span_id
    assert waited.attributes["agentry.approval.decision"] == "approved"
    assert waited.attributes["agentry.approval.id"] == str(approval.pk)
    assert waited.end_ns - waited.start_ns >= 300_000_000
    assert waited.end_ns <= sent.start_ns  # the tool ran after the decision, in the same trace
    assert len([s for s in run_spans if s.name.startswith("chat")]) == 2


def _default_otlp_port_receiver() -> OtlpReceiver | None:
    # Where an exporter would send with no endpoint set (OTLP/HTTP's default port).
    try:
        return OtlpReceiver(port=4318)
    except OSError:
        return None


def test_nothing_is_traced_or_sent_when_unconfigured(
    org, alice, make_agent, providers_at_fake, client_for, notes, monkeypatch
):
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    listening = _default_otlp_port_receiver()
    agent = make_agent(allowed_tools=["note"])
    token = client_for(alice).raw_token
    env = worker_env_for(
        providers_at_fake,
        AGENTRY_TOOL_PORT="tests.tooling.NoteToolPort",
        NOTE_TOOL_URL=notes.url,
        OTEL_SERVICE_NAME="agentry-unconfigured",
    )
    try:
        with (
            asgi_server({"OTEL_SERVICE_NAME": "agentry-unconfigured"}) as base,
            celery_worker(queues="io", concurrency=2, extra_env=env),
        ):
            execution_id = _execute(base, token, agent, "Note it")
            wait_for(lambda: _finished(execution_id), 30, message="the run")
            time.sleep(0.5)
        execution = Execution.objects.get(pk=execution_id)
        assert execution.status == "completed"
        # Neither the web process nor the worker set tracing up (either would have stored ids).
        assert execution.trace_context is None
        if listening is not None:
            assert listening.snapshot() == [] and listening.requests == []
    finally:
        if listening is not None:
            listening.close()


def test_a_run_started_at_the_mcp_door_is_a_child_of_its_request(
    org, alice, make_agent, providers_at_fake, client_for, receiver
):
    from tests.doors.test_mcp_door import _mcp

    make_agent(name="Door Agent")
    providers_at_fake.script(text("Through the door."))
    token = client_for(alice).raw_token
    env = _worker_env(providers_at_fake, receiver, None, "worker")
    with asgi_server(receiver.env()) as base, celery_worker(queues="io", concurrency=2, extra_env=env):
        called = _mcp(base, token, lambda session: session.call_tool("door_agent", {"task": "Knock"}))
        execution_id = called.structured_content["execution_id"]
        # The worker's spans and the web process's are exported in batches of their own:
        # wait for the run's span and the whole chain above it.
        spans = receiver.wait_for(_run_trace_complete(execution_id))
    assert not called.is_error, called.content
    (run,) = [s for s in _run_spans(spans, execution_id) if s.name.startswith("invoke_agent")]
    # Its parent: the MCP SDK's own span of the tools/call, under the /mcp/ request's span.
    (call,) = [s for s in spans if s.span_id == run.parent_span_id]
    assert (call.name, call.scope, call.trace_id) == ("tools/call door_agent", "mcp-python-sdk", run.trace_id)
    (root,) = [s for s in spans if s.trace_id == run.trace_id and s.parent_span_id == ""]
    assert root.kind == SERVER and root.scope.startswith("opentelemetry.instrumentation.asgi"), root
    assert root.attributes.get("http.target", root.attributes.get("url.path", "")).startswith("/mcp")
    assert token not in repr([(s.name, s.attributes) for s in spans])
