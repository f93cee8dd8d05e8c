"""Anthropic messages API via the official SDK: top-level ``system``, tool_use/tool_result
content blocks, and the raw streaming events (message_start ... message_stop)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import anthropic
import httpx2

from .base import (
    ChatMessage,
    CompletionRequest,
    FinishReason,
    LLMClient,
    LLMResponse,
    ProviderConfig,
    StreamEvent,
    ToolCallRequest,
    Usage,
)
from .data import tool_arguments_from_object
from .errors import LLMAuthError, LLMError, LLMInvalidResponse, describe_answer, invalid_response
from .openai_client import organization_key
from .pooling import pooled_sdk
from .sdk_errors import translate_sdk_error
from .shapes import SHAPE_ERRORS, BadShape, count_of, field_of, has_fields, optional_text

# max_tokens is mandatory on the messages API; the reference's default when the agent sets none.
DEFAULT_MAX_TOKENS = 4096

_STOP_REASONS: dict[str | None, FinishReason] = {
    None: "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a server tool paused the turn; for us the answer so far is final
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}


def to_anthropic(messages: list[ChatMessage]) -> tuple[str | None, list[dict[str, Any]]]:
    """(system, messages). System messages are joined into the top-level ``system``; tool results
    become ``tool_result`` blocks of a user message; consecutive same-role messages merge,
    because every tool_result must sit in the one user message right after its tool_use."""
    system: list[str] = []
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            if message.content:
                system.append(message.content)
            continue
        if message.role == "tool":
            role, blocks = "user", [_tool_result_block(message)]
        elif message.role == "assistant":
            role, blocks = "assistant", _assistant_blocks(message)
        else:
            role = "user"
            # The API rejects empty text blocks.
            blocks = [{"type": "text", "text": message.content}] if message.content else []
        if not blocks:
            continue
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": role, "content": blocks})
    return ("\n\n".join(system) or None), wire


def _tool_result_block(message: ChatMessage) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": message.tool_call_id or "",
        "content": message.content or "",
    }
    if message.is_error:
        block["is_error"] = True
    return block


def _assistant_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        # tool_use.input must be an object: a call whose JSON did not parse is replayed as {}
        # (the tool_result that follows carries the parse error for the model to read).
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments or {}})
    return blocks


def usage_from_anthropic(usage: Any) -> Usage:
    """Anthropic's input_tokens excludes cache reads and writes; ours includes them."""
    if usage is None:
        return Usage()
    cache_read = count_of(usage, "cache_read_input_tokens")
    cache_write = count_of(usage, "cache_creation_input_tokens")
    input_tokens = count_of(usage, "input_tokens") + cache_read + cache_write
    output_tokens = count_of(usage, "output_tokens")
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens, cached_input_tokens=cache_read)


def _finish(stop_reason: str | None) -> FinishReason:
    return _STOP_REASONS.get(stop_reason, "error")


class AnthropicClient(LLMClient):
    provider: ClassVar[str] = "anthropic"

    @classmethod
    def resolve_endpoint(cls, config: ProviderConfig) -> tuple[str | None, str | None]:
        if config.endpoint_guard is not None:
            # An organization's own server: its own key, never the environment's (or a profile's).
            return organization_key(cls.provider, config), config.base_url
        # None lets the SDK go on to ANTHROPIC_AUTH_TOKEN and its profile files.
        api_key = config.api_key or os.environ.get("ANTHROPIC_API_KEY") or None
        base_url = config.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        return api_key, base_url

    @classmethod
    def build_sdk(cls, *, api_key: str | None, base_url: str | None, config: ProviderConfig) -> Any:
        return pooled_sdk(
            anthropic.Anthropic,
            default_http_client=anthropic.DefaultHttpxClient,
            http_module=httpx2,
            api_key=api_key,
            base_url=base_url,
            config=config,
        )

    def _request_kwargs(self, request: CompletionRequest) -> dict[str, Any]:
        system, messages = to_anthropic(request.messages)
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            # Passing a timeout also skips the SDK's "streaming required" guess from max_tokens.
            "timeout": self.config.timeout,
        }
        if system:
            kwargs["system"] = system
        if request.tools:
            kwargs["tools"] = [
                {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
                for tool in request.tools
            ]
        body: dict[str, Any] = {}
        # This SDK version has no temperature/top_p arguments; the API still takes them. Newer
        # Claude models reject both at once, so temperature wins when an agent sets both.
        if request.temperature is not None:
            body["temperature"] = request.temperature
        elif request.top_p is not None:
            body["top_p"] = request.top_p
        body.update(request.extra)
        if body:
            kwargs["extra_body"] = body
        return kwargs

    def _complete(self, request: CompletionRequest) -> LLMResponse:
        message = self.sdk.messages.create(**self._request_kwargs(request))
        try:
            return self._parse(message)
        except BadShape as exc:
            raise self._invalid("a message", str(exc)) from None
        except SHAPE_ERRORS as exc:
            raise self._invalid("a message", f"{describe_answer(message)}; {type(exc).__name__}") from None

    def _parse(self, message: Any) -> LLMResponse:
        # The SDK does not validate what the server sent: read every field through shapes.py.
        if not has_fields(message):
            raise BadShape(describe_answer(message))
        blocks = field_of(message, "content")
        if not isinstance(blocks, list):
            raise BadShape("it has no content blocks")
        text: list[str] = []
        calls: list[ToolCallRequest] = []
        for block in blocks:
            kind = field_of(block, "type")
            if kind == "text":
                text.append(optional_text(field_of(block, "text"), "a text block's text"))
            elif kind == "tool_use":
                calls.append(
                    _tool_call(
                        optional_text(field_of(block, "id"), "a tool_use block's id"),
                        optional_text(field_of(block, "name"), "a tool_use block's name"),
                        field_of(block, "input"),
                    )
                )
            elif not isinstance(kind, str):
                raise BadShape("a content block has no type")
        stop_reason = optional_text(field_of(message, "stop_reason"), "stop_reason") or None
        model = field_of(message, "model")
        raw_id = field_of(message, "id")
        return LLMResponse(
            content="".join(text),
            tool_calls=calls,
            finish_reason=_finish(stop_reason),
            usage=usage_from_anthropic(field_of(message, "usage")),
            model=model if isinstance(model, str) and model else self.config.model,
            provider=self.provider,
            raw_id=raw_id if isinstance(raw_id, str) else None,
            raw_finish_reason=stop_reason,
        )

    def _invalid(self, what: str, problem: str) -> LLMInvalidResponse:
        return invalid_response(what, problem, provider=self.provider, model=self.config.model)

    def _stream(self, request: CompletionRequest) -> Iterator[StreamEvent]:
        state = _StreamState(model=self.config.model)
        stream = self.sdk.messages.create(**self._request_kwargs(request), stream=True)
        with stream:
            for event in stream:
                try:
                    events = list(state.feed(event))
                except BadShape as exc:
                    raise self._invalid("a message stream", str(exc)) from None
                except SHAPE_ERRORS as exc:
                    raise self._invalid(
                        "a message stream", f"an event of another shape; {type(exc).__name__}"
                    ) from None
                yield from events
        # Nothing of a message, or no message_stop: a page that is not a stream, or one cut off.
        if state.raw_id is None:
            raise self._invalid("a message stream", "no event of one arrived")
        if not state.stopped:
            raise self._invalid("a message stream", "it ended before message_stop: cut off")
        yield StreamEvent(type="done", response=state.response(provider=self.provider))

    def _translate(self, exc: Exception) -> LLMError | None:
        if isinstance(exc, TypeError) and "authentication" in str(exc):
            # The SDK raises a bare TypeError at request time when it found no credentials.
            return LLMAuthError(
                "no Anthropic credentials: set an API key on the provider connection or ANTHROPIC_API_KEY",
                provider=self.provider,
                model=self.config.model,
                code="no_credentials",
            )
        return translate_sdk_error(
            exc,
            sdk=anthropic,
            provider=self.provider,
            model=self.config.model,
            secrets=(self.config.api_key, getattr(self.sdk, "api_key", None)),
            timeout=self.config.timeout,
        )


def _tool_call(call_id: str, name: str, arguments: Any) -> ToolCallRequest:
    # tool_use.input arrives parsed (a dict), a stream's input as JSON text: the same rules
    # for both (a NUL or nesting too deep is a parse error the model is told, not a crash).
    parsed, raw, error = tool_arguments_from_object(arguments)
    return ToolCallRequest(id=call_id, name=name, arguments=parsed, raw_arguments=raw, parse_error=error)


class _StreamState:
    """Accumulates raw message stream events into text, tool calls and usage."""

    def __init__(self, *, model: str) -> None:
        self.model = model
        self.raw_id: str | None = None
        self.text: list[str] = []
        self.calls: list[ToolCallRequest] = []
        # content block index -> [tool ordinal, id, name, json fragments]
        self.open_tools: dict[int, tuple[int, str, str, list[str]]] = {}
        self.stop_reason: str | None = None
        self.raw_usage: dict[str, int] = dict.fromkeys(
            ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"), 0
        )
        self.stopped = False

    def feed(self, event: Any) -> Iterator[StreamEvent]:
        """StreamEvents for one raw event; raises BadShape (or one of SHAPE_ERRORS) for an
        event of another shape than the protocol's."""
        kind = field_of(event, "type")
        index = field_of(event, "index")
        if kind == "message_start":
            message = field_of(event, "message")
            raw_id = field_of(message, "id")
            self.raw_id = raw_id if isinstance(raw_id, str) else ""
            model = field_of(message, "model")
            self.model = model if isinstance(model, str) and model else self.model
            self._merge_usage(field_of(message, "usage"))
        elif kind == "content_block_start":
            block = field_of(event, "content_block")
            block_type = field_of(block, "type")
            if block_type == "tool_use":
                ordinal = len(self.calls) + len(self.open_tools)
                call_id = optional_text(field_of(block, "id"), "a tool_use block's id")
                name = optional_text(field_of(block, "name"), "a tool_use block's name")
                self.open_tools[index] = (ordinal, call_id, name, [])
                yield StreamEvent(type="tool_call_delta", index=ordinal, tool_call_id=call_id, tool_name=name)
            elif block_type == "text":
                text = optional_text(field_of(block, "text"), "a text block's text")
                if text:
                    self.text.append(text)
                    yield StreamEvent(type="text", text=text)
        elif kind == "content_block_delta":
            delta = field_of(event, "delta")
            delta_type = field_of(delta, "type")
            if delta_type == "text_delta":
                text = optional_text(field_of(delta, "text"), "a text delta")
                self.text.append(text)
                yield StreamEvent(type="text", text=text)
            elif delta_type == "input_json_delta" and index in self.open_tools:
                ordinal, call_id, name, fragments = self.open_tools[index]
                fragment = optional_text(field_of(delta, "partial_json"), "a tool input delta")
                fragments.append(fragment)
                yield StreamEvent(
                    type="tool_call_delta",
                    index=ordinal,
                    tool_call_id=call_id,
                    tool_name=name,
                    arguments_delta=fragment,
                )
        elif kind == "content_block_stop" and index in self.open_tools:
            _, call_id, name, fragments = self.open_tools.pop(index)
            call = _tool_call(call_id, name, "".join(fragments))
            self.calls.append(call)
            yield StreamEvent(type="tool_call", tool_call=call, tool_call_id=call.id, tool_name=call.name)
        elif kind == "message_delta":
            stop_reason = field_of(field_of(event, "delta"), "stop_reason")
            self.stop_reason = optional_text(stop_reason, "stop_reason") or self.stop_reason
            self._merge_usage(field_of(event, "usage"))
        elif kind == "message_stop":
            self.stopped = True

    def _merge_usage(self, usage: Any) -> None:
        # message_start carries the input counts; message_delta's counts are cumulative and
        # carry the input fields only on newer API versions: take whatever is present.
        if usage is None:
            return
        for name in self.raw_usage:
            if field_of(usage, name) is not None:
                self.raw_usage[name] = count_of(usage, name)

    @property
    def usage(self) -> Usage:
        return usage_from_anthropic(SimpleNamespace(**self.raw_usage))

    def response(self, *, provider: str) -> LLMResponse:
        return LLMResponse(
            content="".join(self.text),
            tool_calls=list(self.calls),
            finish_reason=_finish(self.stop_reason) if self.stopped else "error",
            usage=self.usage,
            model=self.model,
            provider=provider,
            raw_id=self.raw_id or None,
            raw_finish_reason=self.stop_reason,
        )
