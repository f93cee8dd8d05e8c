"""OpenAI adapter end to end: the real openai SDK against the fake server."""

from __future__ import annotations

import math

import pytest

from executions.llm import LLMResponse, StreamEvent, ToolSpec, get_client
from tests.fakes import FakeToolCall, Reply, text, tool_call

SEARCH = ToolSpec(
    name="web_search",
    description="Search the web",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


def _done(events: list[StreamEvent]) -> LLMResponse:
    assert events[-1].type == "done"
    assert events[-1].response is not None
    return events[-1].response


def test_text_answer_and_what_the_sdk_sent(fake_llm, fake_provider_config):
    fake_llm.script(text("Hello there", usage={"input": 42, "output": 7}))
    client = get_client(fake_provider_config("openai", model="gpt-4o"))

    response = client.complete(
        [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
        temperature=0.2,
        max_tokens=256,
        top_p=0.9,
        extra={"seed": 7},
    )

    assert response.content == "Hello there"
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.provider == "openai"
    assert response.model == "gpt-4o"
    assert response.raw_id.startswith("chatcmpl-")
    assert response.usage.input_tokens == 42
    assert response.usage.output_tokens == 7
    assert response.usage.total == 49
    assert response.latency_ms > 0
    [request] = fake_llm.chat_requests
    assert request.path == "/v1/chat/completions"
    assert request.has_auth
    body = request.body
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    # Reasoning models reject max_tokens; the adapter always sends max_completion_tokens.
    assert body["max_completion_tokens"] == 256
    assert "max_tokens" not in body
    assert body["seed"] == 7
    assert "tools" not in body


def test_tool_call_with_arguments_and_tool_result_round_trip(fake_llm, fake_provider_config):
    fake_llm.script(tool_call("web_search", {"query": "agentry"}, id="call_abc"), text("Found it."))
    client = get_client(fake_provider_config("openai"))
    history = [{"role": "user", "content": "look up agentry"}]

    first = client.complete(history, tools=[SEARCH])

    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls
    assert (call.id, call.name, call.arguments, call.parse_error) == (
        "call_abc",
        "web_search",
        {"query": "agentry"},
        None,
    )
    history += [first.as_message(), {"role": "tool", "tool_call_id": "call_abc", "content": '{"hits": 3}'}]
    second = client.complete(history, tools=[SEARCH])
    assert second.content == "Found it."

    sent_tools = fake_llm.chat_requests[0].body["tools"]
    assert sent_tools == [
        {
            "type": "function",
            "function": {"name": "web_search", "description": "Search the web", "parameters": SEARCH.parameters},
        }
    ]
    replay = fake_llm.chat_requests[1].body["messages"]
    assert replay[1]["role"] == "assistant"
    assert replay[1]["content"] is None
    assert replay[1]["tool_calls"] == [
        {"id": "call_abc", "type": "function", "function": {"name": "web_search", "arguments": '{"query": "agentry"}'}}
    ]
    assert replay[2] == {"role": "tool", "tool_call_id": "call_abc", "content": '{"hits": 3}'}


def test_malformed_tool_arguments_are_returned_with_parse_error(fake_llm, fake_provider_config):
    fake_llm.script(tool_call("web_search", '{"query": "unterminated'), tool_call("web_search", "[1, 2]"))
    client = get_client(fake_provider_config("openai"))

    [broken] = client.complete([{"role": "user", "content": "go"}], tools=[SEARCH]).tool_calls
    [not_object] = client.complete([{"role": "user", "content": "go"}], tools=[SEARCH]).tool_calls

    assert broken.arguments is None
    assert broken.raw_arguments == '{"query": "unterminated'
    assert "not valid JSON" in broken.parse_error
    assert not_object.arguments is None
    assert "JSON object" in not_object.parse_error


def test_stream_text_then_done_with_usage(fake_llm, fake_provider_config):
    fake_llm.script(text("The quick brown fox jumps over the lazy dog", usage={"input": 30, "output": 9, "cached": 20}))
    client = get_client(fake_provider_config("openai"))

    events = list(client.stream([{"role": "user", "content": "tell me"}]))

    deltas = [e.text for e in events if e.type == "text"]
    assert len(deltas) > 1
    assert "".join(deltas) == "The quick brown fox jumps over the lazy dog"
    response = _done(events)
    assert response.content == "The quick brown fox jumps over the lazy dog"
    assert response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.cached_input_tokens) == (
        30,
        9,
        20,
    )
    body = fake_llm.chat_requests[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_stream_assembles_parallel_tool_calls(fake_llm, fake_provider_config):
    calls = [
        FakeToolCall("web_search", {"query": "first thing"}, id="call_1"),
        FakeToolCall("web_search", {"query": "second thing"}, id="call_2"),
    ]
    fake_llm.script(Reply(text="Let me check.", tool_calls=calls))
    client = get_client(fake_provider_config("openai"))

    events = list(client.stream([{"role": "user", "content": "search twice"}], tools=[SEARCH]))

    fragments = [e for e in events if e.type == "tool_call_delta"]
    assert len(fragments) > 2  # arguments arrive in pieces
    assert {e.index for e in fragments} == {0, 1}
    assembled = [e.tool_call for e in events if e.type == "tool_call"]
    assert [(c.id, c.arguments) for c in assembled] == [
        ("call_1", {"query": "first thing"}),
        ("call_2", {"query": "second thing"}),
    ]
    response = _done(events)
    assert response.finish_reason == "tool_calls"
    assert response.content == "Let me check."
    assert [c.id for c in response.tool_calls] == ["call_1", "call_2"]


def test_stream_malformed_tool_arguments(fake_llm, fake_provider_config):
    fake_llm.script(tool_call("web_search", '{"query": '))
    events = list(get_client(fake_provider_config("openai")).stream([{"role": "user", "content": "x"}], tools=[SEARCH]))
    [call] = _done(events).tool_calls
    assert call.arguments is None
    assert call.raw_arguments == '{"query": '
    assert call.parse_error


def test_cached_prompt_tokens_are_normalized(fake_llm, fake_provider_config):
    fake_llm.script(text("ok", usage={"input": 1000, "output": 10, "cached": 768}))
    usage = get_client(fake_provider_config("openai")).complete([{"role": "user", "content": "x"}]).usage
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.total) == (1000, 768, 10, 1010)


def test_length_and_content_filter_finish_reasons(fake_llm, fake_provider_config):
    fake_llm.script(text("cut", finish_reason="length"), text("", finish_reason="content_filter"))
    client = get_client(fake_provider_config("openai"))
    assert client.complete([{"role": "user", "content": "x"}]).finish_reason == "length"
    assert client.complete([{"role": "user", "content": "x"}]).finish_reason == "content_filter"


def test_embeddings_are_deterministic_unit_vectors(fake_llm, fake_provider_config):
    client = get_client(fake_provider_config("openai", model="text-embedding-3-small"))

    first = client.embed(["alpha", "beta"], dimensions=64)
    again = client.embed(["alpha"], dimensions=64)

    assert len(first.vectors) == 2
    assert all(len(v) == 64 for v in first.vectors)
    assert first.vectors[0] == pytest.approx(again.vectors[0], abs=1e-6)
    assert first.vectors[0] != first.vectors[1]
    assert math.isclose(math.sqrt(sum(x * x for x in first.vectors[0])), 1.0, abs_tol=1e-5)
    assert first.usage.input_tokens > 0
    assert first.model == "text-embedding-3-small"
    body = fake_llm.requests_to("/embeddings")[0].body
    assert body["input"] == ["alpha", "beta"]
    assert body["dimensions"] == 64
    assert body["encoding_format"] == "base64"  # the SDK's default; the adapter decodes it


def test_embeddings_use_the_server_default_dimensions(fake_llm, fake_provider_config):
    result = get_client(fake_provider_config("openai", model="text-embedding-3-small")).embed(["x"])
    assert len(result.vectors[0]) == fake_llm.embedding_dimensions
    assert "dimensions" not in fake_llm.requests_to("/embeddings")[0].body


def test_empty_embedding_input_makes_no_request(fake_llm, fake_provider_config):
    result = get_client(fake_provider_config("openai")).embed([])
    assert result.vectors == []
    assert fake_llm.requests == []
