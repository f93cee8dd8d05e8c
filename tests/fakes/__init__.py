"""Fakes for the test-suite and the benchmarks: a fake LLM provider over real HTTP.

from tests.fakes import FakeLLMServer, text, tool_call, error
"""

from .llm_server import FakeLLMServer
from .script import (
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
