"""Groq (its own SDK) and OpenAI-compatible servers (the OpenAI SDK with a base URL)."""

from __future__ import annotations

import pytest

from executions.llm import LLMConfigurationError, LLMUnsupported, ProviderConfig, ToolSpec, get_client
from tests.fakes import FakeToolCall, Reply, text, tool_call

WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_groq_tool_call_on_its_own_path(fake_llm, fake_provider_config):
    fake_llm.script(tool_call("get_weather", {"city": "Oslo"}), text("Cold.", usage={"input": 11, "output": 2}))
    client = get_client(fake_provider_config("groq", model="llama-3.3-70b-versatile"))

    first = client.complete([{"role": "user", "content": "weather in Oslo?"}], tools=[WEATHER], max_tokens=64)
    second = client.complete(
        [
            {"role": "user", "content": "weather in Oslo?"},
            first.as_message(),
            {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "-5C"},
        ],
        tools=[WEATHER],
    )

    assert first.provider == "groq"
    assert first.finish_reason == "tool_calls"
    assert first.tool_calls[0].arguments == {"city": "Oslo"}
    assert second.content == "Cold."
    assert (second.usage.input_tokens, second.usage.output_tokens) == (11, 2)
    paths = {r.path for r in fake_llm.chat_requests}
    assert paths == {"/openai/v1/chat/completions"}
    assert fake_llm.chat_requests[0].body["max_completion_tokens"] == 64
    assert fake_llm.chat_requests[0].headers["user-agent"].startswith("Groq/")


def test_groq_stream_usage_comes_from_x_groq(fake_llm, fake_provider_config):
    fake_llm.script(
        Reply(text="Sunny and warm today", tool_calls=[FakeToolCall("get_weather", {"city": "Rome"}, id="call_r")],
              usage={"input": 77, "output": 13})
    )  # fmt: skip
    events = list(get_client(fake_provider_config("groq")).stream([{"role": "user", "content": "x"}], tools=[WEATHER]))

    response = events[-1].response
    assert "".join(e.text for e in events if e.type == "text") == "Sunny and warm today"
    assert [(c.id, c.arguments) for c in response.tool_calls] == [("call_r", {"city": "Rome"})]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (77, 13)
    # The Groq SDK has no stream_options; usage arrives in the last chunk's x_groq.
    assert "stream_options" not in fake_llm.chat_requests[0].body


def test_groq_has_no_embeddings(fake_provider_config):
    with pytest.raises(LLMUnsupported):
        get_client(fake_provider_config("groq")).embed(["x"])


def test_compatible_server_without_api_key(fake_llm, fake_provider_config, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-platform-secret-must-not-travel")
    fake_llm.script(text("from llama"))
    client = get_client(fake_provider_config("openai_compatible", model="llama3.2", api_key=None))

    response = client.complete([{"role": "user", "content": "hi"}], max_tokens=50)

    assert response.content == "from llama"
    assert response.provider == "openai_compatible"
    # Never the platform's OpenAI key: a self-hosted server must not receive it.
    assert client.sdk.api_key == "not-needed"
    body = fake_llm.chat_requests[0].body
    assert body["model"] == "llama3.2"
    assert body["max_tokens"] == 50  # older servers do not know max_completion_tokens


def test_compatible_stream_and_tool_calls(fake_llm, fake_provider_config):
    fake_llm.script(tool_call("get_weather", {"city": "Lima"}))
    client = get_client(fake_provider_config("openai_compatible", model="qwen2.5"))
    events = list(client.stream([{"role": "user", "content": "x"}], tools=[WEATHER]))
    assert events[-1].response.tool_calls[0].arguments == {"city": "Lima"}
    assert fake_llm.chat_requests[0].body["stream_options"] == {"include_usage": True}


def test_compatible_stream_usage_can_be_turned_off(fake_llm, fake_provider_config):
    client = get_client(fake_provider_config("openai_compatible", extra={"stream_usage": False}))
    list(client.stream([{"role": "user", "content": "x"}]))
    assert "stream_options" not in fake_llm.chat_requests[0].body


def test_compatible_replays_tool_only_assistant_content_as_empty_string(fake_llm, fake_provider_config):
    client = get_client(fake_provider_config("openai_compatible"))
    client.complete(
        [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "name": "get_weather", "arguments": {}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ]
    )
    assert fake_llm.chat_requests[0].body["messages"][1]["content"] == ""


def test_compatible_embeddings_ask_for_floats(fake_llm, fake_provider_config):
    result = get_client(fake_provider_config("openai_compatible", model="nomic-embed-text")).embed(["a", "b", "c"])
    assert len(result.vectors) == 3
    assert len(result.vectors[0]) == fake_llm.embedding_dimensions
    assert fake_llm.requests_to("/embeddings")[0].body["encoding_format"] == "float"


def test_compatible_needs_a_base_url():
    with pytest.raises(LLMConfigurationError, match="base_url"):
        get_client(ProviderConfig(provider="openai_compatible", model="llama3.2"))
