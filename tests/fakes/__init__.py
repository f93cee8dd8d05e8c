"""Fakes for the test-suite and the benchmarks: a fake LLM provider over real HTTP.

In tests, use the ``fake_llm`` fixture (a session-wide server, reset for each test) and
``fake_provider_config(provider, **overrides)`` for a ProviderConfig aimed at it::

    from tests.fakes import Disconnect, FakeToolCall, Reply, error, text, tool_call

    fake_llm.script(
        error(429, retry_after=0.01),  # the provider's error JSON, any status
        tool_call("web_search", {"query": "x"}),  # one tool call (dict -> JSON)
        tool_call("web_search", '{"query": '),  # malformed arguments, sent verbatim
        Reply(text="a", tool_calls=[FakeToolCall("t", {}, id="call_1")], usage={"input": 9, "output": 2, "cached": 4}),
        text("final answer", delay_ms=200, finish_reason="length"),
        Disconnect(),  # the connection is dropped without an answer
    )
    fake_llm.script_embeddings(error(503))  # embeddings answer by themselves otherwise
    fake_llm.responder = lambda chat: text(chat.system)  # the default when the script is empty
    fake_llm.chat_requests[0].body["messages"]  # what the SDK sent (auth headers removed)

The script is shared by the OpenAI, Groq and Anthropic paths and consumed in order; each item
is rendered in the protocol of the path that asked. With an empty script the default responder
(``auto_responder``) calls the first offered tool, then answers with text once a tool result
comes back: two model calls, one tool call.

For benchmarks: ``python -m bench.fakes.llm_server --port 8765 --latency-ms 0`` (or
``FakeLLMServer(record=False, latency_ms=...)`` in-process); ``GET /_fake/stats`` counts
requests and TCP connections.
"""

from bench.fakes.llm_server import FakeLLMServer
from bench.fakes.script import (
    Conversation,
    Disconnect,
    FakeToolCall,
    HttpError,
    RecordedRequest,
    Reply,
    auto_responder,
    error,
    text,
    tool_call,
)

__all__ = [
    "Conversation",
    "Disconnect",
    "FakeLLMServer",
    "FakeToolCall",
    "HttpError",
    "RecordedRequest",
    "Reply",
    "auto_responder",
    "error",
    "text",
    "tool_call",
]
