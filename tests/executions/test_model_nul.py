"""What a model sends that PostgreSQL cannot store (security issue #14 follow-up): a NUL
character (U+0000) or absurd nesting in its tool arguments is a tool error the model reads,
and a NUL in its text is replaced with U+FFFD; the run goes on either way. Through the real
OpenAI and Anthropic SDKs against the fake server, adapters and runtime both."""

from __future__ import annotations

import pytest

from executions.llm import ToolSpec, get_client
from executions.llm.base import parse_tool_arguments
from executions.models import ExecutionEvent
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tests.fakes import FakeToolCall, Reply, text, tool_call

PROVIDERS = {
    "openai": {"provider": "openai", "model": "gpt-4o"},
    "anthropic": {"provider": "anthropic", "model": "claude-sonnet-4-5"},
}
ECHO = ToolSpec(name="echo", parameters={"type": "object", "properties": {"text": {"type": "string"}}})
DEEP = '{"text": ' + "[" * 100 + "]" * 100 + "}"
# Escaped in the JSON (what a model writes), and a raw NUL inside a string (not JSON at all).
REFUSED = {
    "escaped-nul": ('{"text": "a\\u0000b"}', "arguments contain a NUL character"),
    "nul-in-a-key": ('{"te\\u0000xt": "ab"}', "arguments contain a NUL character"),
    "raw-nul": ('{"text": "a\x00b"}', "arguments are not valid JSON"),
    "too-deep": (DEEP, "arguments nest deeper than 64 levels"),
    "nan": ('{"text": NaN}', "arguments are not valid JSON"),
}


def _tool_result(provider: str, request) -> str:
    """The text of the tool result the model was sent last."""
    last = request.body["messages"][-1]
    if provider == "openai":
        assert last["role"] == "tool"
        return last["content"]
    [block] = [b for b in last["content"] if b["type"] == "tool_result"]
    return block["content"]


# -- the adapters ------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", REFUSED)
@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
def test_refused_arguments_reach_the_caller_as_a_parse_error(fake_llm, fake_provider_config, provider, case, streamed):
    raw, message = REFUSED[case]
    fake_llm.script(Reply(text="Let me\x00 look.", tool_calls=[FakeToolCall(name="ec\x00ho", arguments=raw)]))
    client = get_client(fake_provider_config(provider))
    messages = [{"role": "user", "content": "go"}]
    if streamed:
        [response] = [e.response for e in client.stream(messages, tools=[ECHO]) if e.type == "done"]
    else:
        response = client.complete(messages, tools=[ECHO])
    assert response is not None
    [call] = response.tool_calls
    assert call.arguments is None and message in (call.parse_error or ""), call.parse_error
    # Text is storable: NUL replaced with U+FFFD, in the answer and in what the call keeps.
    assert response.content == "Let me\ufffd look."
    assert call.name == "ec\ufffdho"
    assert "\x00" not in call.raw_arguments and "\x00" not in call.id
    assert "\x00" not in str(call.as_dict())


def test_parse_tool_arguments_names_where_the_nul_is():
    arguments, problem = parse_tool_arguments('{"query": {"text": "a\\u0000b"}}')
    assert arguments is None
    assert problem == "arguments contain a NUL character (\\u0000) at query.text, which cannot be stored"
    assert parse_tool_arguments('{"query": {"text": "ab"}}') == ({"query": {"text": "ab"}}, None)
    assert parse_tool_arguments("") == ({}, None)


# -- the runtime ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", REFUSED)
def test_refused_arguments_are_a_tool_error_the_model_sees_and_the_run_goes_on(
    org, make_agent, providers_at_fake, echo_tool, provider, case
):
    raw, message = REFUSED[case]
    agent = make_agent(allowed_tools=["echo"], model_config=PROVIDERS[provider])
    providers_at_fake.script(tool_call("echo", raw), tool_call("echo", {"text": "fixed"}), text("done"))
    execution, _ = execution_start(agent=agent, organization=org, task="Echo it")
    run_execution(execution.pk)

    execution.refresh_from_db()
    assert execution.status == "completed", (execution.error_code, execution.error)
    assert execution.output == {"text": "done"}
    assert echo_tool == [{"text": "fixed", "key": f"{execution.pk}:5"}]  # only the good call ran
    refused = execution.steps.get(step_type="act", status="failed")
    assert refused.tool_input is None and message in refused.tool_output["error"]
    assert "Call the tool again" in refused.tool_output["error"]
    told = _tool_result(provider, providers_at_fake.chat_requests[1])
    assert message in told


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_nul_in_the_models_text_is_replaced_and_logged(org, make_agent, providers_at_fake, echo_tool, provider):
    agent = make_agent(allowed_tools=["echo"], model_config=PROVIDERS[provider])
    providers_at_fake.script(
        Reply(text="Thinking\x00 first.", tool_calls=[FakeToolCall(name="echo", arguments={"text": "ok"})]),
        Reply(tool_calls=[FakeToolCall(name="ec\x00ho", arguments={"text": "ok"})]),
        text("The answer\x00 is 42."),
    )
    execution, _ = execution_start(agent=agent, organization=org, task="Think out loud")
    run_execution(execution.pk)

    execution.refresh_from_db()
    assert execution.status == "completed", (execution.error_code, execution.error)
    assert (
        execution.output == {"text": "The answer\ufffd is 42."} and execution.result_text == "The answer\ufffd is 42."
    )
    thinks = list(execution.steps.filter(step_type="think").order_by("step_number"))
    assert thinks[0].reasoning == "Thinking\ufffd first." and thinks[-1].output_text == "The answer\ufffd is 42."
    assert thinks[1].llm_tool_calls[0]["name"] == "ec\ufffdho"
    unknown = execution.steps.get(step_type="act", status="failed")
    assert unknown.tool_name == "ec\ufffdho"
    assert echo_tool == [{"text": "ok", "key": f"{execution.pk}:3"}]
    completed = ExecutionEvent.objects.filter(execution=execution, event="think_completed").order_by("seq").last()
    assert completed is not None and completed.data["content"] == "The answer\ufffd is 42."
    # Nothing silent: the run's log says what was replaced, and why.
    logged = [line.message for line in execution.logs.filter(level="warn")]
    assert sum("NUL character" in line and "U+FFFD" in line for line in logged) == 3, logged


UNSTORABLE_ANSWERS = {
    "nul": ('{"answer": "a\\u0000b"}', "NUL character"),
    "deep": ('{"answer": ' + "[" * 200 + "]" * 200 + "}", "deeper than 64 levels"),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("unstorable", UNSTORABLE_ANSWERS)
def test_a_structured_answer_that_cannot_be_stored_is_asked_again(
    org, make_agent, providers_at_fake, provider, unstorable
):
    answer, problem = UNSTORABLE_ANSWERS[unstorable]
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    agent = make_agent(output_schema=schema, model_config=PROVIDERS[provider])
    providers_at_fake.script(text(answer), text('{"answer": "ab"}'))
    execution, _ = execution_start(agent=agent, organization=org, task="Answer in JSON")
    run_execution(execution.pk)

    execution.refresh_from_db()
    assert execution.status == "completed", (execution.error_code, execution.error)
    assert execution.output == {"answer": "ab"}
    problems = list(execution.steps.filter(step_type="reflect").values_list("output_text", flat=True))
    assert len(problems) == 1 and problem in problems[0], problems
