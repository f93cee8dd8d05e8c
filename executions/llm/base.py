"""The one interface every LLM adapter implements (``LLMClient``), and the data it speaks.

Nothing here touches Django or the database: the runtime turns its rows into the dataclasses
of ``data.py`` (re-exported here), calls ``complete`` / ``stream`` / ``embed``, and persists
what comes back.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from .data import (
    ChatMessage,
    CompletionRequest,
    EmbeddingResult,
    EndpointGuard,
    FinishReason,
    LLMResponse,
    ProviderConfig,
    Role,
    StreamEvent,
    StreamEventType,
    ToolCallRequest,
    ToolSpec,
    Usage,
    normalize_finish,
    parse_tool_arguments,
)
from .errors import LLMBadRequest, LLMError, LLMUnsupported
from .retry import call_with_retries

__all__ = [
    "ChatMessage",
    "CompletionRequest",
    "EmbeddingResult",
    "EndpointGuard",
    "FinishReason",
    "LLMClient",
    "LLMResponse",
    "ProviderConfig",
    "Role",
    "StreamEvent",
    "StreamEventType",
    "ToolCallRequest",
    "ToolSpec",
    "Usage",
    "normalize_finish",
    "parse_tool_arguments",
]


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
        tries = 0

        def attempt() -> LLMResponse:
            nonlocal tries
            tries += 1
            return self._complete(request)

        response = call_with_retries(attempt, policy=self.config.retry_policy, translate=self._translate)
        # Wall time the caller waited, retries included: that is what a step "took".
        response.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        response.attempts = tries
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
        tries = 0

        def attempt() -> Iterator[StreamEvent]:
            nonlocal tries
            tries += 1
            return self._open_stream(request)

        events = call_with_retries(attempt, policy=self.config.retry_policy, translate=self._translate)
        try:
            for event in events:
                if event.type == "done" and event.response is not None:
                    event.response.latency_ms = round((time.perf_counter() - started) * 1000, 3)
                    event.response.attempts = tries
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
