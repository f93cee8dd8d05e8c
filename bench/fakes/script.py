"""What the fake LLM server answers: scripted items, the default responders, the request log.

Script items are protocol-neutral; ``protocols.py`` renders them as OpenAI, Groq or Anthropic
wire format depending on the path that was called.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeToolCall:
    name: str
    # A dict is sent as JSON; a str is sent verbatim (use it for malformed JSON).
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def raw_arguments(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class Reply:
    """A successful answer: text and/or tool calls."""

    text: str = ""
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    # Neutral: "stop", "tool_calls", "length", "content_filter"; None: derived from tool_calls.
    # Any other string is sent to the client verbatim.
    finish_reason: str | None = None
    # {"input": int, "output": int, "cached": int}; missing keys are estimated from the request.
    usage: dict[str, int] | None = None
    delay_ms: float = 0
    model: str | None = None


@dataclass
class HttpError:
    """An HTTP error with the provider's own error JSON body."""

    status: int
    message: str = ""
    code: str | None = None
    error_type: str | None = None  # None: the provider's usual type for this status
    retry_after: float | None = None  # seconds, sent as a retry-after header
    delay_ms: float = 0


@dataclass
class Disconnect:
    """Close the connection without answering (the client sees a connection error)."""

    delay_ms: float = 0


ScriptItem = Reply | HttpError | Disconnect


def text(content: str, **kwargs: Any) -> Reply:
    return Reply(text=content, **kwargs)


def tool_call(
    name: str, arguments: dict[str, Any] | str | None = None, *, id: str | None = None, **kwargs: Any
) -> Reply:
    call = FakeToolCall(name=name, arguments={} if arguments is None else arguments, id=id)
    return Reply(tool_calls=[call], **kwargs)


def error(status: int, message: str = "", **kwargs: Any) -> HttpError:
    return HttpError(status=status, message=message, **kwargs)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names; authorization / x-api-key removed
    body: Any  # parsed JSON (None when the body was empty or not JSON)
    has_auth: bool  # whether an Authorization or x-api-key header was sent at all

    @property
    def json(self) -> Any:
        return self.body


@dataclass
class Conversation:
    """A protocol-neutral view of a chat request, for responders and assertions."""

    protocol: str  # "openai" | "groq" | "anthropic"
    body: dict[str, Any]
    tools: list[tuple[str, dict[str, Any]]]  # (name, JSON Schema)
    system: str
    last_user_text: str
    tool_results: list[str]  # tool results sent after the last user text

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


def conversation(protocol: str, body: dict[str, Any]) -> Conversation:
    messages = body.get("messages") or []
    system_parts: list[str] = []
    if protocol == "anthropic":
        tools = [(t.get("name", ""), t.get("input_schema") or {}) for t in body.get("tools") or ()]
        system = body.get("system") or ""
        system_parts.append(system if isinstance(system, str) else " ".join(b.get("text", "") for b in system))
    else:
        tools = [(t["function"]["name"], t["function"].get("parameters") or {}) for t in body.get("tools") or ()]
    last_user, results = "", []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role == "system":
            system_parts.append(content or "")
        elif role == "tool":
            results.append(content if isinstance(content, str) else json.dumps(content))
        elif role == "user" and isinstance(content, list):  # Anthropic blocks
            texts = [b.get("text", "") for b in content if b.get("type") == "text"]
            found = [_block_text(b) for b in content if b.get("type") == "tool_result"]
            if texts:
                last_user, results = " ".join(texts), []
            results.extend(found)
        elif role == "user":
            last_user, results = content or "", []
    return Conversation(
        protocol=protocol,
        body=body,
        tools=tools,
        system="\n".join(p for p in system_parts if p),
        last_user_text=last_user,
        tool_results=results,
    )


def _block_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content)
    return content or ""


Responder = Callable[[Conversation], ScriptItem]


def placeholder_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    values = {"string": "x", "integer": 1, "number": 1, "boolean": False, "array": [], "object": {}}
    arguments: dict[str, Any] = {}
    for name in schema.get("required") or ():
        spec = properties.get(name) or {}
        kind = spec.get("type", "string")
        arguments[name] = (
            spec["enum"][0] if spec.get("enum") else values.get(kind if isinstance(kind, str) else kind[0])
        )
    return arguments


def auto_responder(chat: Conversation) -> ScriptItem:
    """ "Two model calls, one tool call": with tools offered and no tool result yet, call the
    first tool; once a tool result is in the conversation, answer with text."""
    if chat.tools and not chat.tool_results:
        name, schema = chat.tools[0]
        return Reply(tool_calls=[FakeToolCall(name=name, arguments=placeholder_arguments(schema))])
    if chat.tool_results:
        return Reply(text=f"Done. The tool said: {chat.tool_results[-1][:200]}")
    return Reply(text=f"Echo: {chat.last_user_text[:200]}")
