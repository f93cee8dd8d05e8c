"""The one interface every LLM adapter implements, and the plain data it speaks.

Nothing here touches Django or the database: the runtime turns its rows into these
dataclasses, calls ``complete`` / ``stream`` / ``embed``, and persists what comes back.

Messages are neutral (OpenAI-like, because that is the shape most servers speak):
``{"role": "system"|"user"|"assistant"|"tool", "content": str | None,
"tool_calls": [{"id", "name", "arguments": dict}], "tool_call_id": str}`` as a dict or a
``ChatMessage``. Each adapter translates to its provider's wire format.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from .errors import LLMBadRequest, LLMError, LLMUnsupported
from .retry import RetryPolicy, call_with_retries

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "tool_calls", "length", "content_filter", "error"]
StreamEventType = Literal["text", "tool_call_delta", "tool_call", "done"]


@dataclass(frozen=True)
class ProviderConfig:
    """Which provider/model to call and how. ``api_key``/``base_url`` None: the SDK's env vars.

    ``timeout`` is per attempt (for streams: the longest wait between two chunks);
    ``max_retries`` counts repeats after the first attempt on 429/5xx/connection errors, with
    exponential backoff from ``backoff_base`` seconds, each wait capped at ``backoff_max``.
    Worst case per call: ``(max_retries + 1) * timeout + max_retries * backoff_max``.
    ``extra``: ``default_headers`` (dict), ``max_connections`` (int, HTTP pool per client).
    """

    provider: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    timeout: float = 60
    max_retries: int = 2
    extra: dict[str, Any] = field(default_factory=dict, hash=False)
    backoff_base: float = 0.5
    backoff_max: float = 8.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.timeout <= 0 or self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("max_retries, timeout and backoff must be positive")

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"

    @property
    def key_fingerprint(self) -> str:
        """A short hash of the key, safe to log and to use in cache keys."""
        if not self.api_key:
            return ""
        return hashlib.sha256(self.api_key.encode()).hexdigest()[:16]

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries, base=self.backoff_base, cap=self.backoff_max)


@dataclass
class ToolCallRequest:
    """A tool call the model asked for. ``arguments`` is None when the JSON did not parse;
    ``parse_error`` then says why, so the runtime can tell the model instead of crashing."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""
    parse_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments if self.arguments is not None else {}}


@dataclass
class ChatMessage:
    role: Role
    content: str | None = None
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    tool_call_id: str | None = None
    # For tool results: the tool's name (Anthropic does not need it, some compatible servers do).
    name: str | None = None
    # For tool results: the tool failed (Anthropic marks the block ``is_error``).
    is_error: bool = False

    @classmethod
    def coerce(cls, message: ChatMessage | Mapping[str, Any]) -> ChatMessage:
        if isinstance(message, ChatMessage):
            return message
        role = message.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise LLMBadRequest(f"message role must be system, user, assistant or tool, not {role!r}")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            content = json.dumps(content, default=str)
        calls = [_coerce_tool_call(call) for call in message.get("tool_calls") or ()]
        return cls(
            role=role,
            content=content,
            tool_calls=calls,
            tool_call_id=message.get("tool_call_id"),
            name=message.get("name"),
            is_error=bool(message.get("is_error", False)),
        )


def _coerce_tool_call(call: ToolCallRequest | Mapping[str, Any]) -> ToolCallRequest:
    if isinstance(call, ToolCallRequest):
        return call
    # Accept the neutral shape and OpenAI's nested {"function": {"name", "arguments"}} shape.
    function = call.get("function") or {}
    name = call.get("name") or function.get("name") or ""
    arguments = call.get("arguments", function.get("arguments"))
    if isinstance(arguments, str):
        parsed, error = parse_tool_arguments(arguments)
        return ToolCallRequest(
            id=call.get("id") or "", name=name, arguments=parsed, raw_arguments=arguments, parse_error=error
        )
    arguments = dict(arguments or {})
    return ToolCallRequest(id=call.get("id") or "", name=name, arguments=arguments, raw_arguments=json.dumps(arguments))


def parse_tool_arguments(raw: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Parse a model's tool-call argument JSON. Never raises: returns (arguments, error)."""
    # Models call argument-less tools with "" (OpenAI) or omit the field; both mean {}.
    if raw is None or not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return None, f"arguments are not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {type(value).__name__}"
    return value, None


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}}, hash=False)

    @classmethod
    def coerce(cls, tool: ToolSpec | Mapping[str, Any]) -> ToolSpec:
        if isinstance(tool, ToolSpec):
            return tool
        function = tool.get("function", tool)  # OpenAI's {"type": "function", "function": {...}} too
        parameters = function.get("parameters") or function.get("input_schema") or {"type": "object", "properties": {}}
        return cls(name=function["name"], description=function.get("description") or "", parameters=dict(parameters))


@dataclass
class Usage:
    """Normalized token counts. ``input_tokens`` includes cached ones; ``cached_input_tokens``
    is the part served from the provider's prompt cache (priced lower)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    total: int = 0

    def __post_init__(self) -> None:
        if not self.total:
            self.total = self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            total=self.total + other.total,
        )


@dataclass
class LLMResponse:
    content: str
    tool_calls: list[ToolCallRequest]
    finish_reason: FinishReason
    usage: Usage
    model: str
    provider: str
    latency_ms: float = 0.0
    raw_id: str | None = None
    # What the provider actually said ("end_turn", "tool_use", ...), for the step log.
    raw_finish_reason: str | None = None

    def as_message(self) -> ChatMessage:
        """The assistant message to append to the history before sending tool results."""
        return ChatMessage(role="assistant", content=self.content or None, tool_calls=list(self.tool_calls))


@dataclass
class EmbeddingResult:
    vectors: list[list[float]]
    usage: Usage
    model: str = ""
    provider: str = ""


@dataclass
class StreamEvent:
    """One item of ``stream()``: ``text`` (a token delta), ``tool_call_delta`` (a fragment of a
    call's arguments, ``index`` says which call), ``tool_call`` (one call, fully assembled), and
    last ``done`` carrying the complete ``LLMResponse`` with usage."""

    type: StreamEventType
    text: str = ""
    index: int | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    arguments_delta: str = ""
    tool_call: ToolCallRequest | None = None
    response: LLMResponse | None = None


@dataclass
class CompletionRequest:
    messages: list[ChatMessage]
    tools: list[ToolSpec]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def normalize_finish(raw: str | None, *, has_tool_calls: bool) -> FinishReason:
    """Map OpenAI-shaped finish reasons to ours."""
    # Some OpenAI-compatible servers (older Ollama, some vLLM builds) say "stop" while
    # returning tool calls; the tool calls are what matters to the runtime.
    if has_tool_calls and raw in (None, "stop", "tool_calls", "function_call", "eos"):
        return "tool_calls"
    mapping: dict[str | None, FinishReason] = {
        "stop": "stop",
        "eos": "stop",
        None: "stop",
        "tool_calls": "tool_calls",
        "function_call": "tool_calls",
        "length": "length",
        "content_filter": "content_filter",
    }
    return mapping.get(raw, "error")


class LLMClient:
    """Base adapter: retries, timing and argument handling; subclasses speak one protocol."""

    provider: ClassVar[str] = ""
    supports_embeddings: ClassVar[bool] = False

    def __init__(self, *, config: ProviderConfig, sdk: Any = None) -> None:
        self.config = config
        self.sdk = sdk  # the (shared, cached) SDK client object, or None for the sandbox

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config.label} base_url={self.config.base_url!r}>"

    # -- public API --------------------------------------------------------------------

    def complete(
        self,
        messages: Iterable[ChatMessage | Mapping[str, Any]],
        *,
        tools: Sequence[ToolSpec | Mapping[str, Any]] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> LLMResponse:
        request = self._build_request(messages, tools, temperature, max_tokens, top_p, extra)
        started = time.perf_counter()
        response = call_with_retries(
            lambda: self._complete(request), policy=self.config.retry_policy, translate=self._translate
        )
        # Wall time the caller waited, retries included: that is what a step "took".
        response.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return response

    def stream(
        self,
        messages: Iterable[ChatMessage | Mapping[str, Any]],
        *,
        tools: Sequence[ToolSpec | Mapping[str, Any]] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Iterator[StreamEvent]:
        request = self._build_request(messages, tools, temperature, max_tokens, top_p, extra)
        started = time.perf_counter()
        # Retrying is only safe before the first event: after that the caller has seen tokens.
        events = call_with_retries(
            lambda: self._open_stream(request), policy=self.config.retry_policy, translate=self._translate
        )
        try:
            for event in events:
                if event.type == "done" and event.response is not None:
                    event.response.latency_ms = round((time.perf_counter() - started) * 1000, 3)
                yield event
        except LLMError:
            raise
        except Exception as exc:
            error = self._translate(exc)
            if error is None:
                raise
            raise error from (None if error.status_code else exc)

    def embed(
        self, texts: Sequence[str], *, model: str | None = None, dimensions: int | None = None
    ) -> EmbeddingResult:
        if not self.supports_embeddings:
            raise LLMUnsupported(
                f"{self.provider} has no embeddings API here; use an OpenAI or OpenAI-compatible "
                "provider, or the local embedder",
                provider=self.provider,
                model=model or self.config.model,
            )
        texts = list(texts)
        if not texts:
            return EmbeddingResult(vectors=[], usage=Usage(), model=model or self.config.model, provider=self.provider)
        return call_with_retries(
            lambda: self._embed(texts, model=model or self.config.model, dimensions=dimensions),
            policy=self.config.retry_policy,
            translate=self._translate,
        )

    # -- adapter hooks -----------------------------------------------------------------

    def _complete(self, request: CompletionRequest) -> LLMResponse:
        raise NotImplementedError

    def _stream(self, request: CompletionRequest) -> Iterator[StreamEvent]:
        raise NotImplementedError

    def _embed(self, texts: list[str], *, model: str, dimensions: int | None) -> EmbeddingResult:
        raise NotImplementedError

    def _translate(self, exc: Exception) -> LLMError | None:
        """Turn an SDK/transport exception into an LLMError; None: not ours, re-raise as is."""
        return None

    # -- helpers -----------------------------------------------------------------------

    def _open_stream(self, request: CompletionRequest) -> Iterator[StreamEvent]:
        """Start the stream and pull its first event, so connection and HTTP errors surface
        inside the retry loop rather than in the caller's for-loop."""
        iterator = self._stream(request)
        try:
            first = next(iterator)
        except StopIteration:
            return iter(())
        return _prepend(first, iterator)

    def _build_request(
        self,
        messages: Iterable[ChatMessage | Mapping[str, Any]],
        tools: Sequence[ToolSpec | Mapping[str, Any]] | None,
        temperature: float | None,
        max_tokens: int | None,
        top_p: float | None,
        extra: Mapping[str, Any] | None,
    ) -> CompletionRequest:
        try:
            coerced = [ChatMessage.coerce(message) for message in messages]
            specs = [ToolSpec.coerce(tool) for tool in tools or ()]
        except (KeyError, TypeError, AttributeError) as exc:
            raise LLMBadRequest(
                f"malformed message or tool: {exc!r}", provider=self.provider, model=self.config.model
            ) from exc
        except LLMBadRequest as exc:
            raise LLMBadRequest(exc.message, provider=self.provider, model=self.config.model) from exc
        return CompletionRequest(
            messages=coerced,
            tools=specs,
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            extra=dict(extra or {}),
        )


def _prepend(first: StreamEvent, rest: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
    yield first
    yield from rest
