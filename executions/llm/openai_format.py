"""The OpenAI chat-completions wire shape, shared by the OpenAI, Groq and compatible adapters.

Pure translation: neutral messages/tools -> request dicts, SDK response objects -> LLMResponse,
and a stream assembler that turns chunks into StreamEvents. No I/O here. The SDKs do not
validate what a server sent (a compatible server, an organization's base URL), so every field
is read through ``shapes.py`` and an answer of another shape is an LLMInvalidResponse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .base import (
    ChatMessage,
    LLMResponse,
    StreamEvent,
    ToolCallRequest,
    ToolSpec,
    Usage,
    normalize_finish,
    parse_tool_arguments,
)
from .errors import LLMInvalidResponse, LLMProviderUnavailable, describe_answer, excerpt, invalid_response
from .shapes import SHAPE_ERRORS, BadShape, count_of, field_of, has_fields, optional_text


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
    details = field_of(usage, "prompt_tokens_details")
    cached = count_of(details, "cached_tokens")
    prompt = count_of(usage, "prompt_tokens")
    completion = count_of(usage, "completion_tokens")
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cached_input_tokens=cached,
        total=count_of(usage, "total_tokens") or prompt + completion,
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
    """The SDK's chat completion as an LLMResponse; anything else (a text body, JSON of another
    shape: the SDKs do not validate) raises LLMInvalidResponse."""
    try:
        return _parse_completion(completion, provider=provider, requested_model=requested_model)
    except BadShape as exc:
        raise invalid_response("a chat completion", str(exc), provider=provider, model=requested_model) from None
    except SHAPE_ERRORS as exc:
        problem = f"{describe_answer(completion)}; {type(exc).__name__}"
        raise invalid_response("a chat completion", problem, provider=provider, model=requested_model) from None


def _parse_completion(completion: Any, *, provider: str, requested_model: str) -> LLMResponse:
    if not has_fields(completion):
        raise BadShape(describe_answer(completion))
    choices = field_of(completion, "choices")
    if not isinstance(choices, list) or not choices:
        # No choice at all would end the run with an empty answer as if the model had said it.
        raise BadShape("it has no choices")
    choice = choices[0]
    message = field_of(choice, "message")
    if not has_fields(message):
        raise BadShape("its first choice has no message")
    raw_calls = field_of(message, "tool_calls") or []
    if not isinstance(raw_calls, list):
        raise BadShape("its tool_calls are not a list")
    calls = [
        _wire_call(call, position)
        for position, call in enumerate(raw_calls)
        if (field_of(call, "type") or "function") == "function"  # "custom" tools: never offered by us
    ]
    finish_reason = optional_text(field_of(choice, "finish_reason"), "finish_reason") or None
    return LLMResponse(
        content=optional_text(field_of(message, "content"), "the message's content"),
        tool_calls=calls,
        finish_reason=normalize_finish(finish_reason, has_tool_calls=bool(calls)),
        usage=usage_from_openai(field_of(completion, "usage")),
        model=_model(completion, requested_model),
        provider=provider,
        raw_id=_identifier(completion),
        raw_finish_reason=finish_reason,
    )


def _wire_call(call: Any, position: int) -> ToolCallRequest:
    function = field_of(call, "function")
    if function is None:
        raise BadShape(f"tool call {position} has no function")
    arguments = field_of(function, "arguments")
    if isinstance(arguments, dict):  # some compatible servers send the object itself
        arguments = json.dumps(arguments)
    return tool_call_from_wire(
        optional_text(field_of(call, "id"), "a tool call's id") or None,
        optional_text(field_of(function, "name"), "a tool call's name"),
        optional_text(arguments, "a tool call's arguments"),
        position,
    )


def _model(answer: Any, requested_model: str) -> str:
    model = field_of(answer, "model")
    return model if isinstance(model, str) and model else requested_model


def _identifier(answer: Any) -> str | None:
    raw_id = field_of(answer, "id")
    return raw_id if isinstance(raw_id, str) else None


@dataclass
class _PartialCall:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


class StreamAssembler:
    """Folds chat-completion chunks into StreamEvents and a final LLMResponse.

    A stream that carried no chunk of a chat completion (an HTML page, events of another
    shape) or ended before its finish reason (cut off) raises LLMInvalidResponse at the end:
    a run must not take half an answer, or none, for the model's last word.
    """

    def __init__(self, *, provider: str, requested_model: str) -> None:
        self.provider = provider
        self.requested_model = requested_model
        self.model = requested_model
        self.raw_id: str | None = None
        self.text: list[str] = []
        self.calls: dict[int, _PartialCall] = {}
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.stream_error: str | None = None
        self.chunks = 0  # chunks of a chat completion seen

    def feed(self, chunk: Any) -> Iterator[StreamEvent]:
        try:
            yield from self._feed(chunk)
        except BadShape as exc:
            raise self._invalid(str(exc)) from None
        except SHAPE_ERRORS as exc:
            raise self._invalid(f"a chunk of another shape; {type(exc).__name__}") from None

    def _feed(self, chunk: Any) -> Iterator[StreamEvent]:
        choices = field_of(chunk, "choices")
        usage = field_of(chunk, "usage")
        # Groq reports stream usage in its own "x_groq" extension on the last chunk.
        x_groq = field_of(chunk, "x_groq")
        if usage is None and x_groq is not None:
            usage = field_of(x_groq, "usage")
            error = field_of(x_groq, "error")
            self.stream_error = (excerpt(error) if error else None) or self.stream_error
        if not isinstance(choices, list) and usage is None:
            return  # not a chunk of a chat completion (a keep-alive, another server's event)
        self.chunks += 1
        self.raw_id = self.raw_id or _identifier(chunk)
        self.model = _model(chunk, self.model)
        if usage is not None:
            self.usage = usage_from_openai(usage)
        for choice in choices or ():
            if field_of(choice, "index") not in (None, 0):
                continue
            delta = field_of(choice, "delta")
            content = optional_text(field_of(delta, "content"), "a chunk's content")
            if content:
                self.text.append(content)
                yield StreamEvent(type="text", text=content)
            calls = field_of(delta, "tool_calls") or []
            if not isinstance(calls, list):
                raise BadShape("a chunk's tool_calls are not a list")
            for call in calls:
                yield self._feed_call(call)
            finish = optional_text(field_of(choice, "finish_reason"), "finish_reason")
            if finish:
                self.finish = finish

    def _feed_call(self, call: Any) -> StreamEvent:
        index = field_of(call, "index")
        call_id = optional_text(field_of(call, "id"), "a tool call's id") or None
        if not isinstance(index, int):
            # Some servers omit the index and send each call whole: key by id, or append.
            known = [i for i, partial in self.calls.items() if call_id and partial.id == call_id]
            index = known[0] if known else len(self.calls)
        partial = self.calls.setdefault(index, _PartialCall())
        function = field_of(call, "function")
        partial.id = partial.id or call_id
        partial.name = partial.name or optional_text(field_of(function, "name"), "a tool call's name") or None
        fragment = field_of(function, "arguments")
        fragment = json.dumps(fragment) if isinstance(fragment, dict) else optional_text(fragment, "arguments")
        partial.arguments.append(fragment)
        return StreamEvent(
            type="tool_call_delta",
            index=index,
            tool_call_id=partial.id,
            tool_name=partial.name,
            arguments_delta=fragment,
        )

    def _invalid(self, problem: str) -> LLMInvalidResponse:
        return invalid_response("a chat completion stream", problem, provider=self.provider, model=self.requested_model)

    def finish_events(self) -> Iterator[StreamEvent]:
        if not self.chunks:
            raise self._invalid("no chunk of one arrived")
        if self.stream_error:
            # Groq ended the stream with an error of its own (x_groq.error).
            raise LLMProviderUnavailable(
                f"the provider aborted the stream: {self.stream_error}",
                provider=self.provider,
                model=self.requested_model,
                code="stream_error",
            )
        if self.finish is None:
            raise self._invalid("it ended before its finish reason: cut off")
        calls = [
            tool_call_from_wire(partial.id, partial.name, "".join(partial.arguments), position)
            for position, (_, partial) in enumerate(sorted(self.calls.items()))
        ]
        for call in calls:
            yield StreamEvent(type="tool_call", tool_call=call, tool_call_id=call.id, tool_name=call.name)
        response = LLMResponse(
            content="".join(self.text),
            tool_calls=calls,
            finish_reason=normalize_finish(self.finish, has_tool_calls=bool(calls)),
            usage=self.usage or Usage(),
            model=self.model,
            provider=self.provider,
            raw_id=self.raw_id,
            raw_finish_reason=self.finish,
        )
        yield StreamEvent(type="done", response=response)
