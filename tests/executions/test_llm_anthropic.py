"""Anthropic adapter end to end: the real anthropic SDK against the fake server."""

from __future__ import annotations

import pytest

from executions.llm import LLMUnsupported, ToolSpec, get_client
from tests.fakes import FakeToolCall, Reply, text, tool_call

LOOKUP = ToolSpec(
    name="crm_lookup",
    description="Find a CRM contact",
    parameters={"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]},
)


def test_system_prompt_is_top_level_and_text_answer(fake_llm, fake_provider_config):
    fake_llm.script(text("Bonjour", usage={"input": 50, "output": 3}))
    client = get_client(fake_provider_config("anthropic", model="claude-opus-4-6"))

    response = client.complete(
        [
            {"role": "system", "content": "You are a CRM assistant."},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Say hello"},
        ],
        temperature=0.3,
        max_tokens=300,
    )

    assert response.content == "Bonjour"
    assert response.finish_reason == "stop"
    assert response.raw_finish_reason == "end_turn"
    assert response.provider == "anthropic"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (50, 3)
    [request] = fake_llm.chat_requests
    assert request.path == "/v1/messages"
    assert request.headers["anthropic-version"]
    body = request.body
    assert body["system"] == "You are a CRM assistant.\n\nAnswer in French."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]
    assert body["max_tokens"] == 300
    assert body["temperature"] == 0.3
    assert "top_p" not in body


def test_max_tokens_has_a_default_and_temperature_wins_over_top_p(fake_llm, fake_provider_config):
    client = get_client(fake_provider_config("anthropic"))
    client.complete([{"role": "user", "content": "x"}], temperature=0.5, top_p=0.9)
    client.complete([{"role": "user", "content": "x"}], top_p=0.9)
    first, second = (r.body for r in fake_llm.chat_requests)
    assert first["max_tokens"] == 4096
    # Newer Claude models reject temperature and top_p together.
    assert (first["temperature"], "top_p" in first) == (0.5, False)
    assert (second["top_p"], "temperature" in second) == (0.9, False)


def test_tool_use_and_tool_result_blocks(fake_llm, fake_provider_config):
    fake_llm.script(
        Reply(
            text="Looking up.",
            tool_calls=[
                FakeToolCall("crm_lookup", {"email": "a@x.test"}, id="toolu_1"),
                FakeToolCall("crm_lookup", {"email": "b@x.test"}, id="toolu_2"),
            ],
        ),
        text("Both found."),
    )
    client = get_client(fake_provider_config("anthropic"))
    history = [{"role": "system", "content": "sys"}, {"role": "user", "content": "find a and b"}]

    first = client.complete(history, tools=[LOOKUP])

    assert first.finish_reason == "tool_calls"
    assert first.raw_finish_reason == "tool_use"
    assert first.content == "Looking up."
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [
        ("toolu_1", "crm_lookup", {"email": "a@x.test"}),
        ("toolu_2", "crm_lookup", {"email": "b@x.test"}),
    ]
    history += [
        first.as_message(),
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Alice"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "not found", "is_error": True},
    ]
    assert client.complete(history, tools=[LOOKUP]).content == "Both found."

    assert fake_llm.chat_requests[0].body["tools"] == [
        {"name": "crm_lookup", "description": "Find a CRM contact", "input_schema": LOOKUP.parameters}
    ]
    messages = fake_llm.chat_requests[1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Looking up."},
        {"type": "tool_use", "id": "toolu_1", "name": "crm_lookup", "input": {"email": "a@x.test"}},
        {"type": "tool_use", "id": "toolu_2", "name": "crm_lookup", "input": {"email": "b@x.test"}},
    ]
    # Both results in the one user message that follows the tool_use message.
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Alice"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "not found", "is_error": True},
    ]


def test_stream_text_and_tool_use_assembly(fake_llm, fake_provider_config):
    fake_llm.script(
        Reply(
            text="Let me look that up for you.",
            tool_calls=[FakeToolCall("crm_lookup", {"email": "someone@example.test"}, id="toolu_9")],
            usage={"input": 120, "output": 25},
        )
    )
    client = get_client(fake_provider_config("anthropic"))

    events = list(client.stream([{"role": "user", "content": "who?"}], tools=[LOOKUP]))

    text_deltas = [e.text for e in events if e.type == "text"]
    assert len(text_deltas) > 1
    assert "".join(text_deltas) == "Let me look that up for you."
    json_deltas = [e.arguments_delta for e in events if e.type == "tool_call_delta" and e.arguments_delta]
    assert len(json_deltas) > 1
    assert all(e.index == 0 for e in events if e.type == "tool_call_delta")
    [assembled] = [e.tool_call for e in events if e.type == "tool_call"]
    assert (assembled.id, assembled.name, assembled.arguments) == (
        "toolu_9",
        "crm_lookup",
        {"email": "someone@example.test"},
    )
    done = events[-1]
    assert done.type == "done"
    assert done.response.finish_reason == "tool_calls"
    assert done.response.content == "Let me look that up for you."
    assert (done.response.usage.input_tokens, done.response.usage.output_tokens) == (120, 25)
    assert fake_llm.chat_requests[0].body["stream"] is True


def test_cache_reads_count_as_input_and_cached(fake_llm, fake_provider_config):
    # The fake sends Anthropic's split: input_tokens=200 (uncached) + cache_read_input_tokens=800.
    fake_llm.script(text("a", usage={"input": 1000, "output": 5, "cached": 800}))
    fake_llm.script(text("b", usage={"input": 1000, "output": 5, "cached": 800}))
    client = get_client(fake_provider_config("anthropic"))

    usage = client.complete([{"role": "user", "content": "x"}]).usage
    streamed = list(client.stream([{"role": "user", "content": "x"}]))[-1].response.usage

    for normalized in (usage, streamed):
        assert (normalized.input_tokens, normalized.cached_input_tokens, normalized.output_tokens) == (1000, 800, 5)
        assert normalized.total == 1005


def test_malformed_streamed_tool_input_sets_parse_error(fake_llm, fake_provider_config):
    fake_llm.script(tool_call("crm_lookup", '{"email": "a@'))
    events = list(
        get_client(fake_provider_config("anthropic")).stream([{"role": "user", "content": "x"}], tools=[LOOKUP])
    )
    [call] = events[-1].response.tool_calls
    assert call.arguments is None
    assert call.raw_arguments == '{"email": "a@'
    assert call.parse_error


def test_stop_reasons_are_normalized(fake_llm, fake_provider_config):
    fake_llm.script(text("long", finish_reason="length"), text("", finish_reason="content_filter"))
    client = get_client(fake_provider_config("anthropic"))
    first = client.complete([{"role": "user", "content": "x"}])
    second = client.complete([{"role": "user", "content": "x"}])
    assert (first.finish_reason, first.raw_finish_reason) == ("length", "max_tokens")
    assert (second.finish_reason, second.raw_finish_reason) == ("content_filter", "refusal")


def test_embeddings_are_unsupported(fake_llm, fake_provider_config):
    with pytest.raises(LLMUnsupported) as caught:
        get_client(fake_provider_config("anthropic")).embed(["x"])
    assert caught.value.provider == "anthropic"
    assert caught.value.retryable is False
    assert fake_llm.requests == []
