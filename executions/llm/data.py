"""The plain data the LLM layer speaks: configs, messages, tools, responses, stream events.

Messages are neutral (OpenAI-like, because that is the shape most servers speak):
``{"role": "system"|"user"|"assistant"|"tool", "content": str | None,
"tool_calls": [{"id", "name", "arguments": dict}], "tool_call_id": str}`` as a dict or a
``ChatMessage``. Each adapter translates to its provider's wire format.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from config.api.json_input import MAX_JSON_DEPTH, JsonInputError, json_loads_bounded

from .errors import LLMBadRequest
from .retry import RetryPolicy

# PostgreSQL's text and jsonb cannot hold NUL (U+0000), and every answer of a model is stored
# (steps, events, memories). Text a model sends is made storable where it enters the platform
# (LLMResponse, ToolCallRequest): each NUL is *replaced* with U+FFFD, the replacement
# character, never stripped, so a reader of the stored text sees that something was there,
# and ``nul_replaced`` counts them so the run's log can say so. Tool *arguments* are never
# altered: a NUL in them refuses the call (``parse_tool_arguments``), because a changed
# argument could change what the tool does.
NUL = "\x00"
REPLACEMENT = "\ufffd"

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "tool_calls", "length", "content_filter", "error"]
StreamEventType = Literal["text", "tool_call_delta", "tool_call", "done"]


@dataclass(frozen=True)
class EndpointGuard:
    """How to reach an endpoint an organization supplied (see ``config/guarded_http.py``).

    ``resolve(url)`` checks the URL's host and returns the address to connect to, or raises
    ``guarded_http.EndpointRefused``; ``withheld``: the platform's configured secrets, which
    never go there (those the SDKs would read from the environment are added on each call).
    """

    resolve: Callable[[str], str] = field(compare=False)
    withheld: frozenset[str] = field(default_factory=frozenset, repr=False)


@dataclass(frozen=True)
class ProviderConfig:
    """Which provider/model to call and how. ``api_key``/``base_url`` None: the SDK's env vars.

    ``timeout`` is per attempt (for streams: the longest wait between two chunks);
    ``max_retries`` counts repeats after the first attempt on 429/5xx/connection errors, with
    exponential backoff from ``backoff_base`` seconds, each wait capped at ``backoff_max``.
    Worst case per call: ``(max_retries + 1) * timeout + max_retries * backoff_max``.
    ``extra``: ``default_headers`` (dict), ``max_connections`` (int, HTTP pool per client).
    ``endpoint_guard``: set when ``base_url`` is an organization's own server. Such a config
    never falls back to the environment for its key or URL (no platform key goes there),
    and every connection goes through the guard (SSRF checks, no redirects).
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
    endpoint_guard: EndpointGuard | None = None
    # OpenAI's organization id (the OpenAI-Organization header); only the openai adapter sends it.
    organization: str | None = None

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


def storable_text(text: str) -> tuple[str, int]:
    """(text with each NUL replaced by U+FFFD, how many were replaced)."""
    count = text.count(NUL) if isinstance(text, str) else 0
    return (text.replace(NUL, REPLACEMENT), count) if count else (text, 0)


@dataclass
class ToolCallRequest:
    """A tool call the model asked for. ``arguments`` is None when the JSON did not parse or
    cannot be accepted (a NUL character, nesting too deep); ``parse_error`` then says why, so
    the runtime can tell the model instead of crashing. Its id, name and raw arguments are
    made storable (module comment above)."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""
    parse_error: str | None = None
    nul_replaced: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.id, in_id = storable_text(self.id)
        self.name, in_name = storable_text(self.name)
        self.raw_arguments, in_raw = storable_text(self.raw_arguments)
        self.nul_replaced = in_id + in_name + in_raw

    def as_dict(self) -> dict[str, Any]:
        """The neutral dict form, for persisting a step; ``ChatMessage.coerce`` reads it back.
        ``arguments`` stays None when the JSON did not parse."""
        return {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "raw_arguments": self.raw_arguments,
            "parse_error": self.parse_error,
        }


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
    call_id = call.get("id") or ""
    arguments = call.get("arguments", function.get("arguments"))
    raw = call.get("raw_arguments")
    if arguments is None and raw:
        # A call whose JSON did not parse, read back from a persisted step.
        parsed, error = parse_tool_arguments(raw)
        return ToolCallRequest(id=call_id, name=name, arguments=parsed, raw_arguments=raw, parse_error=error)
    if isinstance(arguments, str):
        parsed, error = parse_tool_arguments(arguments)
        return ToolCallRequest(id=call_id, name=name, arguments=parsed, raw_arguments=arguments, parse_error=error)
    arguments = dict(arguments or {})
    return ToolCallRequest(id=call_id, name=name, arguments=arguments, raw_arguments=raw or json.dumps(arguments))


def parse_tool_arguments(raw: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Parse a model's tool-call argument JSON. Never raises: returns (arguments, error).

    Refused like invalid JSON, with a reason the model can act on: NaN/Infinity, a NUL
    character anywhere (PostgreSQL cannot store the step or the tool call), nesting deeper
    than ``MAX_JSON_DEPTH`` (the same bounds as any JSON the API accepts).
    """
    # Models call argument-less tools with "" (OpenAI) or omit the field; both mean {}.
    if raw is None or not raw.strip():
        return {}, None
    try:
        value = json_loads_bounded(raw)
    except JsonInputError as problem:
        if problem.is_nul:
            return None, f"arguments contain a NUL character (\\u0000) at {problem.field}, which cannot be stored"
        return None, f"arguments nest deeper than {MAX_JSON_DEPTH} levels"
    except ValueError as exc:
        return None, f"arguments are not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {type(value).__name__}"
    return value, None


def tool_arguments_from_object(arguments: Any) -> tuple[dict[str, Any] | None, str, str | None]:
    """(arguments, raw JSON, error) for arguments a protocol delivers already parsed
    (Anthropic's tool_use ``input``), held to the same rules as ``parse_tool_arguments``:
    written out as JSON and read back through it (a NaN, a NUL, nesting too deep)."""
    if isinstance(arguments, str):
        raw = arguments
    else:
        try:
            raw = json.dumps(arguments, allow_nan=False)
        except (ValueError, TypeError, RecursionError) as exc:
            return None, "", f"arguments are not valid JSON: {exc}"
    parsed, error = parse_tool_arguments(raw)
    return parsed, raw, error


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
    # Tries of the provider that answered (1 = no retry), and "provider/model: error" of each
    # earlier fallback config that failed: the run's log says what the answer cost in detours.
    attempts: int = 1
    fallback_from: list[str] = field(default_factory=list)
    _nul_in_content: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Storable text (module comment above); the tool calls did the same for theirs.
        self.content, self._nul_in_content = storable_text(self.content)

    @property
    def nul_replaced(self) -> int:
        """NUL characters replaced with U+FFFD in this answer: its text and its tool calls."""
        return self._nul_in_content + sum(call.nul_replaced for call in self.tool_calls)

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


# How the system prompt asks for a final answer of a JSON Schema (executions/runtime/context.py);
# the sandbox provider reads the schema back from it to answer in that shape.
RESPONSE_FORMAT_INTRO = "Your final answer must be a single JSON value matching this JSON Schema:\n"


@dataclass
class CompletionRequest:
    messages: list[ChatMessage]
    tools: list[ToolSpec]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def normalize_finish(raw: str | None, *, has_tool_calls: bool) -> FinishReason:
    """Map OpenAI-shaped finish reasons to ours (unknown ones, e.g. vLLM's "abort": "error")."""
    # Gemini's native API spells them in capitals (STOP, MAX_TOKENS); accept either case.
    raw = raw.lower() if raw else None
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
