"""OpenTelemetry GenAI traces of runs, in this process: the span tree, its attributes, the
opt-in content capture, delegated runs and chain steps as children, nothing when unconfigured.

The spans go over OTLP/HTTP to a receiver that decodes them with ``opentelemetry-proto``
(tests/fakes/otlp_receiver.py); the same runs across real processes (an API server and
workers, a killed worker, an approval) are in tests/executions/test_telemetry_processes.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agents.services.chains import chain_create
from bench.fakes.script import error, text, tool_call
from config import telemetry as otel
from executions.chains.services import chain_execution_start
from executions.models import Execution
from executions.runtime.loop import run_execution
from executions.runtime.tools_port import LocalTool, register_local_tool, unregister_local_tool
from executions.services import execution_start
from tests.chains.conftest import run_to_end
from tests.fakes.fixtures import FAKE_API_KEY
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def traced(monkeypatch) -> Iterator[OtlpReceiver]:
    """This process traced as a configured one would be, exporting to a local receiver."""
    with OtlpReceiver() as receiver:
        provider = TracerProvider(id_generator=otel._Ids())
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")))
        monkeypatch.setattr(otel, "_provider", provider)
        yield receiver
        provider.shutdown()


def _of(spans: list[ReceivedSpan], execution) -> list[ReceivedSpan]:
    return [s for s in spans if s.attributes.get("agentry.execution.id") == str(execution.pk)]


def _invoke(spans: list[ReceivedSpan], execution) -> ReceivedSpan:
    (span,) = [s for s in _of(spans, execution) if s.name.startswith("invoke_agent")]
    return span


def _all_values(spans: list[ReceivedSpan]) -> str:
    return repr([(s.name, s.attributes, s.resource, s.status_message) for s in spans])


def test_a_run_is_one_trace_of_genai_spans(org, make_agent, providers_at_fake, echo_tool, traced):
    agent = make_agent(name="Echoer", allowed_tools=["echo"])
    providers_at_fake.script(tool_call("echo", {"text": "hi"}), text("said hi"))
    execution, _ = execution_start(agent=agent, organization=org, task="Say hi")
    assert execution.trace_context and execution.trace_context["sampled"] is True
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed"

    spans = traced.wait_for(lambda spans: any(s.name.startswith("invoke_agent") for s in spans))
    run = _invoke(spans, execution)
    assert run.name == "invoke_agent Echoer"
    assert (run.trace_id, run.span_id) == (execution.trace_context["trace_id"], execution.trace_context["span_id"])
    assert run.parent_span_id == ""  # started outside any request: the trace's root
    mine = _of(spans, execution)
    assert {s.trace_id for s in mine} == {run.trace_id}
    assert sorted(s.name for s in mine) == ["chat gpt-4o", "chat gpt-4o", "execute_tool echo", "invoke_agent Echoer"]
    assert all(s.parent_span_id == run.span_id for s in mine if s is not run)

    a = run.attributes
    assert a["gen_ai.operation.name"] == "invoke_agent" and a["gen_ai.agent.name"] == "Echoer"
    assert a["gen_ai.agent.id"] == str(agent.pk) and a["agentry.organization.id"] == str(org.pk)
    assert a["gen_ai.usage.input_tokens"] == execution.tokens_input > 0
    assert a["gen_ai.usage.output_tokens"] == execution.tokens_output > 0
    assert a["agentry.cost.usd"] == pytest.approx(float(execution.cost))
    assert a["agentry.execution.status"] == "completed"
    assert (a["gen_ai.provider.name"], a["gen_ai.request.model"]) == ("openai", "gpt-4o")
    chats = sorted((s for s in mine if s.name.startswith("chat")), key=lambda s: s.start_ns)
    first = chats[0].attributes
    assert first["gen_ai.operation.name"] == "chat" and first["gen_ai.provider.name"] == "openai"
    assert first["gen_ai.request.model"] == "gpt-4o" and first["gen_ai.response.model"]
    assert first["gen_ai.usage.input_tokens"] > 0 and first["gen_ai.usage.output_tokens"] > 0
    assert first["gen_ai.response.finish_reasons"] == ["tool_calls"]
    (tool,) = [s for s in mine if s.name == "execute_tool echo"]
    think = execution.steps.filter(step_type="act").get()
    assert tool.attributes["gen_ai.tool.name"] == "echo"
    assert tool.attributes["gen_ai.tool.call.id"] == think.tool_call_id
    assert chats[0].end_ns <= tool.start_ns <= tool.end_ns <= chats[1].start_ns
    assert run.start_ns <= chats[0].start_ns and chats[1].end_ns <= run.end_ns

    # Off by default: no prompt, answer, argument or result in the trace; never a key.
    everything = _all_values(spans)
    for absent in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.arguments", "Say hi"):
        assert absent not in everything
    assert FAKE_API_KEY not in everything


def test_contents_are_recorded_with_the_conventions_opt_in(
    org, make_agent, providers_at_fake, echo_tool, traced, monkeypatch
):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    agent = make_agent(allowed_tools=["echo"])
    providers_at_fake.script(tool_call("echo", {"text": "marco"}), text("polo"))
    execution, _ = execution_start(agent=agent, organization=org, task="Play marco polo")
    run_execution(execution.pk)
    spans = traced.wait_for(lambda spans: any(s.name.startswith("invoke_agent") for s in spans))
    chats = sorted((s for s in _of(spans, execution) if s.name.startswith("chat")), key=lambda s: s.start_ns)
    assert "Play marco polo" in chats[0].attributes["gen_ai.input.messages"]
    assert '"tool_call"' in chats[0].attributes["gen_ai.output.messages"]
    assert "polo" in chats[1].attributes["gen_ai.output.messages"]
    (tool,) = [s for s in _of(spans, execution) if s.name.startswith("execute_tool")]
    assert "marco" in tool.attributes["gen_ai.tool.call.arguments"]
    assert "marco" in tool.attributes["gen_ai.tool.call.result"]
    assert FAKE_API_KEY not in _all_values(spans)


def test_a_failed_model_call_marks_its_span_without_the_providers_words(org, make_agent, providers_at_fake, traced):
    providers_at_fake.script(error(400, "bad request: the plan is CONFIDENTIAL-PLAN"))
    execution, _ = execution_start(agent=make_agent(name="Failing"), organization=org, task="x")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "failed" and "CONFIDENTIAL-PLAN" in execution.error
    spans = traced.wait_for(lambda spans: any(s.name == "invoke_agent Failing" for s in spans))
    (chat,) = [s for s in _of(spans, execution) if s.name.startswith("chat")]
    run = _invoke(spans, execution)
    assert chat.status_code == run.status_code == 2  # STATUS_CODE_ERROR
    assert chat.attributes["error.type"] == run.attributes["error.type"] == "ExecutionFailed"
    assert chat.events == [] and "CONFIDENTIAL-PLAN" not in _all_values(spans)


def test_a_delegated_run_is_a_child_of_the_tool_call_that_started_it(org, make_agent, providers_at_fake, traced):
    helper = make_agent(name="Helper")
    started: list = []

    def delegate(*, context, task: str) -> dict:
        child, _ = execution_start(agent=helper, organization=org, task=task, parent=context.execution)
        started.append(child)
        return {"execution_id": str(child.pk)}

    register_local_tool(LocalTool(name="delegate", handler=delegate, parameters={"type": "object", "properties": {"task": {"type": "string"}}}))  # fmt: skip
    try:
        boss = make_agent(name="Boss", allowed_tools=["delegate"])
        providers_at_fake.script(tool_call("delegate", {"task": "help"}), text("delegated"), text("helped"))
        parent, _ = execution_start(agent=boss, organization=org, task="Get help")
        run_execution(parent.pk)
        (child,) = started
        run_execution(child.pk)
    finally:
        unregister_local_tool("delegate")
    assert Execution.objects.get(pk=child.pk).status == "completed"
    spans = traced.wait_for(lambda spans: sum(s.name.startswith("invoke_agent") for s in spans) == 2)
    (tool,) = [s for s in _of(spans, parent) if s.name == "execute_tool delegate"]
    child_run = _invoke(spans, child)
    assert child_run.name == "invoke_agent Helper"
    assert child_run.trace_id == _invoke(spans, parent).trace_id
    assert child_run.parent_span_id == tool.span_id
    assert all(s.trace_id == child_run.trace_id for s in _of(spans, child))


def test_a_chain_step_of_a_run_joins_that_runs_trace(org, make_agent, traced):
    # The chain runner starts its steps outside any span (a Celery task): their parent is
    # the run that started the chain.
    agent = make_agent()
    parent, _ = execution_start(agent=agent, organization=org, task="x")
    step, _ = execution_start(agent=agent, organization=org, task="y", parent=parent, trigger_type="chain")
    assert step.trace_context["trace_id"] == parent.trace_context["trace_id"]
    assert step.trace_context["parent_span_id"] == parent.trace_context["span_id"]
    assert step.trace_context["span_id"] != parent.trace_context["span_id"]


def test_a_chains_steps_are_runs_under_the_chains_span(owner_actor, make_agent, providers_at_fake, traced):
    first, second = make_agent(name="First"), make_agent(name="Second")
    chain = chain_create(
        actor=owner_actor,
        data={
            "name": "Pipeline",
            "steps": [
                {"id": "one", "agent_id": str(first.pk), "input_mapping": {"task": "Start"}},
                {"id": "two", "agent_id": str(second.pk), "input_mapping": {"task": "Go on"}},
            ],
        },
    )
    run = run_to_end(chain_execution_start(chain=chain, input={}, actor=owner_actor))
    assert run.status == "completed", run.error
    spans = traced.wait_for(lambda spans: any(s.name == "chain Pipeline" for s in spans))
    (chain_span,) = [s for s in spans if s.name == "chain Pipeline"]
    assert chain_span.parent_span_id == "" and chain_span.span_id == run.trace_context["span_id"]
    assert chain_span.attributes["agentry.chain_execution.id"] == str(run.pk)
    steps = list(Execution.objects.filter(trigger_type="chain").order_by("created_at"))
    assert len(steps) == 2
    for execution in steps:
        step_run = _invoke(spans, execution)
        assert (step_run.trace_id, step_run.parent_span_id) == (chain_span.trace_id, chain_span.span_id)


def test_a_run_created_before_tracing_was_on_gets_a_trace_when_it_runs(
    org, make_agent, providers_at_fake, monkeypatch, traced
):
    agent = make_agent(name="Late")
    provider = otel._provider
    monkeypatch.setattr(otel, "_provider", None)
    execution, _ = execution_start(agent=agent, organization=org, task="x")
    assert execution.trace_context is None
    monkeypatch.setattr(otel, "_provider", provider)  # tracing on again
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.trace_context is not None
    spans = traced.wait_for(lambda spans: any(s.name == "invoke_agent Late" for s in spans))
    assert _invoke(spans, execution).span_id == execution.trace_context["span_id"]


def test_sampled_out_runs_send_nothing(org, make_agent, providers_at_fake, traced, monkeypatch):
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    monkeypatch.setattr(otel._provider, "sampler", ALWAYS_OFF)
    agent = make_agent()
    execution, _ = execution_start(agent=agent, organization=org, task="x")
    assert execution.trace_context["sampled"] is False
    run_execution(execution.pk)
    assert Execution.objects.get(pk=execution.pk).status == "completed"
    otel._provider.force_flush()
    assert traced.snapshot() == []


def test_unconfigured_nothing_is_set_up_or_stored(org, make_agent, providers_at_fake, monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert otel.configured() is False and otel.enabled() is False
    assert otel.setup() is False and otel.provider() is None
    execution, _ = execution_start(agent=make_agent(), organization=org, task="x")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed" and execution.trace_context is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    assert otel.configured() is True
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert otel.configured() is False
