"""The OpenAI chat-completions wire shape, shared by the OpenAI, Groq and compatible adapters.

Pure translation: neutral messages/tools -> request dicts, SDK response objects -> LLMResponse,
and a stream assembler that turns chunks into StreamEvents. No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .base import (
    ChatMessage,
    FinishReason,
    LLMResponse,
    StreamEvent,
    ToolCallRequest,
    ToolSpec,
    Usage,
    normalize_finish,
    parse_tool_arguments,
)


def to_openai_messages(messages: list[ChatMessage], *, empty_content: str | None = None) -> list[dict[str, Any]]:
    """``empty_content``: what to send as an assistant's content when it only calls tools.
    OpenAI wants null there; some compatible servers reject null and want ""."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            item: dict[str, Any] = {
                "role": "tool",
                "tool_call_id": message.tool_call_id or "",
                "content": message.content or "",
            }
            if message.name:
                item["name"] = message.name
        elif message.role == "assistant":
            item = {"role": "assistant", "content": message.content if message.content else empty_content}
            if message.tool_calls:  # an empty list is rejected by OpenAI ("[] is too short")
                item["tool_calls"] = [_wire_tool_call(call) for call in message.tool_calls]
        else:
            item = {"role": message.role, "content": message.content or ""}
        wire.append(item)
    return wire


def _wire_tool_call(call: ToolCallRequest) -> dict[str, Any]:
    # Replay what the model sent if it did not parse, so the model sees its own mistake.
    arguments = json.dumps(call.arguments) if call.arguments is not None else call.raw_arguments
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}}


def to_openai_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
        }
        for tool in tools
    ]


def usage_from_openai(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    prompt = usage.prompt_tokens or 0
    completion = usage.completion_tokens or 0
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cached_input_tokens=cached,
        total=usage.total_tokens or prompt + completion,
    )


def tool_call_from_wire(call_id: str | None, name: str | None, raw: str | None, position: int) -> ToolCallRequest:
    arguments, error = parse_tool_arguments(raw)
    return ToolCallRequest(
        # Some compatible servers omit ids; the runtime needs one to pair the result with the call.
        id=call_id or f"call_{position}",
        name=name or "",
        arguments=arguments,
        raw_arguments=raw or "",
        parse_error=error,
    )


def parse_completion(completion: Any, *, provider: str, requested_model: str) -> LLMResponse:
    usage = usage_from_openai(getattr(completion, "usage", None))
    model = getattr(completion, "model", None) or requested_model
    if not completion.choices:
        return LLMResponse(
            content="", tool_calls=[], finish_reason="error", usage=usage, model=model, provider=provider,
            raw_id=completion.id,
        )  # fmt: skip
    choice = completion.choices[0]
    message = choice.message
    calls = [
        tool_call_from_wire(call.id, call.function.name, call.function.arguments, position)
        for position, call in enumerate(message.tool_calls or ())
        if getattr(call, "type", "function") == "function"  # "custom" tools: never offered by us
    ]
    return LLMResponse(
        content=message.content or "",
        tool_calls=calls,
        finish_reason=normalize_finish(choice.finish_reason, has_tool_calls=bool(calls)),
        usage=usage,
        model=model,
        provider=provider,
        raw_id=completion.id,
        raw_finish_reason=choice.finish_reason,
    )


@dataclass
class _PartialCall:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


class StreamAssembler:
    """Folds chat-completion chunks into StreamEvents and a final LLMResponse."""

    def __init__(self, *, provider: str, requested_model: str) -> None:
        self.provider = provider
        self.model = requested_model
        self.raw_id: str | None = None
        self.text: list[str] = []
        self.calls: dict[int, _PartialCall] = {}
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.stream_error: str | None = None

    def feed(self, chunk: Any) -> Iterator[StreamEvent]:
        self.raw_id = self.raw_id or getattr(chunk, "id", None)
        self.model = getattr(chunk, "model", None) or self.model
        usage = getattr(chunk, "usage", None)
        # Groq reports stream usage in its own "x_groq" extension on the last chunk.
        x_groq = getattr(chunk, "x_groq", None)
        if usage is None and x_groq is not None:
            usage = getattr(x_groq, "usage", None)
            self.stream_error = getattr(x_groq, "error", None) or self.stream_error
        if usage is not None:
            self.usage = usage_from_openai(usage)
        for choice in chunk.choices or ():
            if choice.index not in (None, 0):
                continue
            delta = choice.delta
            if delta is not None and delta.content:
                self.text.append(delta.content)
                yield StreamEvent(type="text", text=delta.content)
            for call in (delta.tool_calls if delta is not None else None) or ():
                yield self._feed_call(call)
            if choice.finish_reason:
                self.finish = choice.finish_reason

    def _feed_call(self, call: Any) -> StreamEvent:
        index = call.index
        if index is None:
            # Some servers omit the index and send each call whole: key by id, or append.
            known = [i for i, partial in self.calls.items() if call.id and partial.id == call.id]
            index = known[0] if known else len(self.calls)
        partial = self.calls.setdefault(index, _PartialCall())
        function = call.function
        partial.id = partial.id or call.id
        name = getattr(function, "name", None) if function is not None else None
        partial.name = partial.name or name
        fragment = (getattr(function, "arguments", None) if function is not None else None) or ""
        partial.arguments.append(fragment)
        return StreamEvent(
            type="tool_call_delta",
            index=index,
            tool_call_id=partial.id,
            tool_name=partial.name,
            arguments_delta=fragment,
        )

    def finish_events(self) -> Iterator[StreamEvent]:
        calls = [
            tool_call_from_wire(partial.id, partial.name, "".join(partial.arguments), position)
            for position, (_, partial) in enumerate(sorted(self.calls.items()))
        ]
        for call in calls:
            yield StreamEvent(type="tool_call", tool_call=call, tool_call_id=call.id, tool_name=call.name)
        # No finish reason means the stream was cut off; x_groq.error means Groq aborted it.
        finish: FinishReason = "error"
        if self.finish is not None and not self.stream_error:
            finish = normalize_finish(self.finish, has_tool_calls=bool(calls))
        response = LLMResponse(
            content="".join(self.text),
            tool_calls=calls,
            finish_reason=finish,
            usage=self.usage or Usage(),
            model=self.model,
            provider=self.provider,
            raw_id=self.raw_id,
            raw_finish_reason=self.finish,
        )
        yield StreamEvent(type="done", response=response)
