"""The OpenAI-compatible endpoints with the official ``openai`` SDK against a live server and a
real worker: models, completions (plain and streamed), responses (plain, continued, streamed),
a run parked for approval, refusals in OpenAI's error shape, and tenancy."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from bench.fakes.script import text, tool_call
from executions.models import Execution
from tools.models import AgentCapabilityGrant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def sdk(doors, token: str) -> OpenAI:
    return OpenAI(base_url=f"{doors.url}/openai/v1", api_key=token, max_retries=0, timeout=60)


def agent_calls(fake) -> list:
    return [r for r in fake.chat_requests if "response_format" not in r.body]


def test_models_lists_the_agents_the_token_may_run(doors, org, alice, vic, oscar, make_agent, token_for):
    helper = make_agent(name="Helper", description="Answers questions.")
    make_agent(name="Private", visibility="private")  # alice's own, but vic cannot see it
    models = sdk(doors, token_for(alice)).models.list()
    ids = [m.id for m in models.data]
    assert "helper" in ids and "private" in ids
    assert models.data[0].object == "model"
    assert sdk(doors, token_for(alice)).models.retrieve("helper").model_extra["agentry"]["agent_id"] == str(helper.pk)
    # A viewer may not execute: nothing to list. Another organization's token sees none of org's.
    assert [m.id for m in sdk(doors, token_for(vic)).models.list().data] == []
    assert [m.id for m in sdk(doors, token_for(oscar)).models.list().data] == []
    with pytest.raises(openai.NotFoundError) as missing:
        sdk(doors, token_for(oscar)).models.retrieve("helper")
    assert missing.value.code == "AgentNotFound" and missing.value.type == "not_found_error"


def test_a_completion_is_a_priced_execution(doors, org, alice, make_agent, providers_at_fake, token_for):
    agent = make_agent(name="Helper")
    providers_at_fake.script(text("Paris is the capital of France.", usage={"input": 40, "output": 9}))
    answer = sdk(doors, token_for(alice)).chat.completions.create(
        model="helper",
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is the capital of Italy?"},
            {"role": "assistant", "content": "Rome."},
            {"role": "user", "content": "And of France?"},
        ],
        temperature=0.2,
        max_tokens=300,
    )
    assert answer.choices[0].message.content == "Paris is the capital of France."
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (40, 9, 49)
    execution = Execution.objects.get(pk=answer.model_extra["agentry"]["execution_id"])
    assert execution.agent_id == agent.pk and execution.trigger_type == "openai" and execution.status == "completed"
    assert execution.tokens_total == 49 and execution.cost > 0
    assert execution.max_tokens == 300 and execution.config["model_config"]["temperature"] == 0.2
    # What the model saw: the agent's own instructions first, the caller's system text appended
    # after them, the earlier turns, the last user message as the task.
    (call,) = agent_calls(providers_at_fake)
    messages = call.body["messages"]
    system = messages[0]["content"]
    assert system.index("You are a careful test agent.") < system.index("Answer in one sentence.")
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user"]
    assert messages[-1]["content"] == "And of France?" and messages[1]["content"] == "What is the capital of Italy?"
    assert call.body["temperature"] == 0.2 and call.body["max_completion_tokens"] == 300


def test_a_streamed_completion_ends_with_done(doors, org, alice, make_agent, providers_at_fake, token_for):
    make_agent(name="Helper")
    providers_at_fake.script(text("one two three four", usage={"input": 10, "output": 4}))
    stream = sdk(doors, token_for(alice)).chat.completions.create(
        model="helper",
        messages=[{"role": "user", "content": "Count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)  # the SDK stops at data: [DONE]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "one two three four"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 14
    assert len({c.id for c in chunks}) == 1
    # The raw wire format: SSE data lines ending with [DONE].
    with httpx.stream(
        "POST",
        f"{doors.url}/openai/v1/chat/completions",
        headers={"Authorization": f"Bearer {token_for(alice)}"},
        json={"model": "helper", "messages": [{"role": "user", "content": "Again"}], "stream": True},
        timeout=60,
    ) as raw:
        providers_at_fake.script(text("again"))
        assert raw.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in raw.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"


def test_responses_create_continue_and_get(doors, org, alice, make_agent, providers_at_fake, token_for):
    make_agent(name="Helper")
    client = sdk(doors, token_for(alice))
    providers_at_fake.script(text("Nice to meet you, Ada."))
    first = client.responses.create(model="helper", input="My name is Ada.", instructions="Be brief.")
    assert first.status == "completed" and first.output_text == "Nice to meet you, Ada."
    assert first.id.startswith("resp_") and first.usage.total_tokens > 0

    providers_at_fake.script(text("Your name is Ada."))
    second = client.responses.create(model="helper", input="What is my name?", previous_response_id=first.id)
    assert second.output_text == "Your name is Ada." and second.previous_response_id == first.id
    call = agent_calls(providers_at_fake)[-1]
    turns = [(m["role"], m["content"]) for m in call.body["messages"][1:]]
    assert turns == [
        ("user", "My name is Ada."),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "What is my name?"),
    ]
    # instructions belong to the response that had them, as in OpenAI's API.
    assert "Be brief." not in call.body["messages"][0]["content"]
    assert client.responses.retrieve(second.id).output_text == "Your name is Ada."

    providers_at_fake.script(text("streamed reply"))
    events = list(client.responses.create(model="helper", input="Stream please", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "streamed reply"
    assert events[-1].response.output_text == "streamed reply"


def test_a_run_parked_for_approval_says_so_with_the_link(
    doors, org, alice, make_agent, providers_at_fake, synced_tools, token_for
):
    agent = make_agent(name="Mailer", allowed_tools=["email_send"])
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["send_emails"])
    asked = {"to": ["a@example.test"], "subject": "Hi", "body": "Hello"}
    providers_at_fake.script(tool_call("email_send", asked))
    answer = sdk(doors, token_for(alice)).chat.completions.create(
        model="mailer", messages=[{"role": "user", "content": "Mail them"}]
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "approval_required"
    approval = answer.model_extra["agentry"]["approval"]
    assert approval["tool"] == "email_send" and approval["url"] == f"{doors.url}/approvals/{approval['id']}/"
    assert approval["url"] in choice.message.content and "approval" in choice.message.content
    assert Execution.objects.get(pk=answer.model_extra["agentry"]["execution_id"]).status == "waiting_approval"

    providers_at_fake.script(tool_call("email_send", asked))
    response = sdk(doors, token_for(alice)).responses.create(model="mailer", input="Mail them again")
    assert response.status == "incomplete" and response.incomplete_details.reason == "approval_required"
    assert "/approvals/" in response.output_text


def test_refusals_are_in_openais_error_shape(doors, org, alice, vic, oscar, make_agent, token_for):
    make_agent(name="Helper")
    client = sdk(doors, token_for(alice))
    with pytest.raises(openai.BadRequestError) as tools:
        client.chat.completions.create(
            model="helper",
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        )
    assert tools.value.code == "tools_not_supported" and tools.value.param == "tools"
    assert "run on the server" in tools.value.message
    with pytest.raises(openai.BadRequestError) as too_many:
        client.chat.completions.create(model="helper", messages=[{"role": "user", "content": "x"}], max_tokens=10**6)
    assert too_many.value.param == "max_tokens"
    with pytest.raises(openai.AuthenticationError) as anonymous:
        sdk(doors, "agt_not-a-real-token").models.list()
    assert anonymous.value.status_code == 401 and anonymous.value.type == "authentication_error"
    with pytest.raises(openai.NotFoundError):  # another organization's agent does not exist for oscar
        sdk(doors, token_for(oscar)).chat.completions.create(
            model="helper", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.PermissionDeniedError) as viewer:  # a viewer may not execute
        sdk(doors, token_for(vic)).chat.completions.create(model="helper", messages=[{"role": "user", "content": "x"}])
    assert viewer.value.code in ("InsufficientPermissions", "AgentAccessDenied")
    with pytest.raises(openai.PermissionDeniedError) as scope:  # a read-only token may not either
        sdk(doors, token_for(alice, scopes=["agents:read"])).chat.completions.create(
            model="helper", messages=[{"role": "user", "content": "x"}]
        )
    assert scope.value.code == "AgentAccessDenied"
    with pytest.raises(openai.NotFoundError):  # oscar cannot read org's responses either
        first = Execution.objects.filter(organization=org).first()
        sdk(doors, token_for(oscar)).responses.retrieve(f"resp_{first.pk.hex}" if first else "resp_x")
    unknown = httpx.get(f"{doors.url}/openai/v1/nothing-here", timeout=10)
    assert unknown.status_code == 404 and set(unknown.json()["error"]) == {"message", "type", "param", "code"}
    assert Execution.objects.filter(organization=org).count() == 0  # nothing refused was started
