"""Pick the adapter for a ProviderConfig, reuse SDK clients, and fall back across providers.

SDK client objects own an HTTP connection pool. Creating one per call would open a new TCP
(and TLS) connection for every model call, so they are cached per process by (provider,
base_url, hash of the key, pool options, whether the endpoint is an organization's own and
guarded) and shared by all threads: the SDK clients are thread-safe. The key itself is never
part of the cache key, only its SHA-256 prefix.

Fallback policy (``complete_with_fallback``): the next config is tried after
- LLMRateLimited, LLMProviderUnavailable (after this config's own retries were spent),
- LLMAuthError, LLMConfigurationError, LLMUnsupported (this config cannot work; another may),
- LLMBadRequest with HTTP 404 (the model does not exist at that provider).
Any other LLMBadRequest (400/413/422: a malformed message, an invalid tool schema, a prompt
over the context window) stops at once and is raised: the next provider would be sent the same
input, most likely fail the same way, and might bill for it. Trimming history to fit a smaller
context is the runtime's job, not the fallback's.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .base import ChatMessage, LLMClient, LLMResponse, ProviderConfig, StreamEvent, ToolSpec
from .errors import LLMBadRequest, LLMConfigurationError, LLMError

T = TypeVar("T")

ADAPTERS: dict[str, str] = {
    "openai": "executions.llm.openai_client.OpenAIClient",
    "anthropic": "executions.llm.anthropic_client.AnthropicClient",
    "groq": "executions.llm.groq_client.GroqClient",
    "openai_compatible": "executions.llm.compatible_client.CompatibleClient",
    "sandbox": "executions.llm.sandbox_client.SandboxClient",
}

# Enough for every (organization connection x provider) a worker sees; evicted clients are
# closed by the garbage collector once no in-flight call holds them.
MAX_CACHED_SDK_CLIENTS = 256

_sdk_cache: OrderedDict[tuple[str, ...], Any] = OrderedDict()
_lock = threading.Lock()


def adapter_class(provider: str) -> type[LLMClient]:
    path = ADAPTERS.get(provider)
    if path is None:
        raise LLMConfigurationError(
            f"unknown LLM provider {provider!r}; expected one of {', '.join(sorted(ADAPTERS))}", provider=provider
        )
    module_name, class_name = path.rsplit(".", 1)
    # Imported on first use: each SDK takes ~100-300 ms to import and most processes need one.
    adapter: type[LLMClient] = getattr(importlib.import_module(module_name), class_name)
    return adapter


def get_client(config: ProviderConfig) -> LLMClient:
    """The adapter for ``config``, sharing a cached SDK client (and its connections)."""
    cls = adapter_class(config.provider)
    resolve = getattr(cls, "resolve_endpoint", None)
    if resolve is None:  # the sandbox: no SDK, no network
        return cls(config=config)
    api_key, base_url = resolve(config)
    key = (
        config.provider,
        base_url or "",
        hashlib.sha256(api_key.encode()).hexdigest() if api_key else "",
        str(config.extra.get("max_connections", "")),
        # No timeout here: every request passes its config's timeout, overriding the pool's.
        json.dumps(config.extra.get("default_headers") or {}, sort_keys=True),
        # An organization's endpoint never shares a client with an operator's for the same URL.
        _guard_key(config),
        # Nor do two OpenAI organizations share one (the SDK sends the id on every call).
        config.organization or "",
    )
    with _lock:
        sdk = _sdk_cache.get(key)
        if sdk is not None:
            _sdk_cache.move_to_end(key)
    if sdk is None:
        client = cls(config=config)
        try:
            sdk = cls.build_sdk(api_key=api_key, base_url=base_url, config=config)  # type: ignore[attr-defined]
        except Exception as exc:
            error = client._translate(exc)
            if error is None:
                raise
            raise error from exc
        with _lock:
            # Two threads may have built one each; keep the first so they share a pool.
            sdk = _sdk_cache.setdefault(key, sdk)
            while len(_sdk_cache) > MAX_CACHED_SDK_CLIENTS:
                _sdk_cache.popitem(last=False)
    return cls(config=config, sdk=sdk)


def _guard_key(config: ProviderConfig) -> str:
    guard = config.endpoint_guard
    if guard is None:
        return ""
    withheld = "\n".join(sorted(guard.withheld))
    return "guarded:" + hashlib.sha256(withheld.encode()).hexdigest()


def clear_client_cache() -> None:
    """Forget cached SDK clients (tests that change env vars, key rotation)."""
    with _lock:
        _sdk_cache.clear()


@dataclass
class FallbackAttempt:
    config: ProviderConfig
    error: LLMError | None
    latency_ms: float


@dataclass
class FallbackResult:
    response: LLMResponse
    config: ProviderConfig  # the one that answered
    attempts: list[FallbackAttempt] = field(default_factory=list)  # every config tried, in order


def should_fall_back(error: LLMError) -> bool:
    if isinstance(error, LLMBadRequest):
        return error.status_code == 404
    return True


def _first_that_answers(
    configs: Sequence[ProviderConfig], call: Callable[[LLMClient], T]
) -> tuple[T, ProviderConfig, list[FallbackAttempt]]:
    """``call`` with each config's client in order until one answers; the fallback policy of
    the module doc. When all fail, the last error is raised with ``fallback_attempts`` set."""
    if not configs:
        raise LLMConfigurationError("no provider configured")
    attempts: list[FallbackAttempt] = []
    last = len(configs) - 1
    for position, config in enumerate(configs):
        started = time.perf_counter()
        try:
            answer = call(get_client(config))
        except LLMError as error:
            attempts.append(FallbackAttempt(config, error, _elapsed_ms(started)))
            if not should_fall_back(error) or position == last:
                error.fallback_attempts = attempts
                raise
            continue
        attempts.append(FallbackAttempt(config, None, _elapsed_ms(started)))
        return answer, config, attempts
    raise AssertionError("unreachable")  # pragma: no cover


def complete_with_fallback(
    configs: Sequence[ProviderConfig],
    messages: Iterable[ChatMessage | Mapping[str, Any]],
    *,
    tools: Sequence[ToolSpec | Mapping[str, Any]] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    top_p: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> FallbackResult:
    """Try each config in order (each with its own retries); see the module doc for when we
    move on. When all fail, the last error is raised with ``fallback_attempts`` set on it."""
    messages = list(messages)
    response, config, attempts = _first_that_answers(
        configs,
        lambda client: client.complete(
            messages, tools=tools, temperature=temperature, max_tokens=max_tokens, top_p=top_p, extra=extra
        ),
    )
    response.fallback_from = _failed(attempts)
    return FallbackResult(response=response, config=config, attempts=attempts)


def stream_with_fallback(
    configs: Sequence[ProviderConfig],
    messages: Iterable[ChatMessage | Mapping[str, Any]],
    *,
    tools: Sequence[ToolSpec | Mapping[str, Any]] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    top_p: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Iterator[StreamEvent]:
    """Like ``complete_with_fallback`` for streams, falling back only before the first event
    (after that the caller has shown tokens). The ``done`` event's response names the
    provider and model that answered."""
    messages = list(messages)

    def opened(client: LLMClient) -> tuple[StreamEvent | None, Iterator[StreamEvent]]:
        events = client.stream(
            messages, tools=tools, temperature=temperature, max_tokens=max_tokens, top_p=top_p, extra=extra
        )
        return next(events, None), events

    (first, events), _, attempts = _first_that_answers(configs, opened)
    if first is not None:
        failed = _failed(attempts)
        yield _with_fallbacks(first, failed)
        for event in events:
            yield _with_fallbacks(event, failed)


def _failed(attempts: list[FallbackAttempt]) -> list[str]:
    return [f"{a.config.label}: {type(a.error).__name__}" for a in attempts if a.error is not None]


def _with_fallbacks(event: StreamEvent, failed: list[str]) -> StreamEvent:
    if event.type == "done" and event.response is not None:
        event.response.fallback_from = failed
    return event


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
