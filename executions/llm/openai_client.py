"""OpenAI chat completions (tools, streaming with usage) and embeddings, via the official SDK."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any, ClassVar

import httpx2
import openai

from .base import CompletionRequest, EmbeddingResult, LLMClient, LLMResponse, ProviderConfig, StreamEvent, Usage
from .errors import LLMAuthError, LLMError, describe_answer, invalid_response
from .openai_format import StreamAssembler, parse_completion, to_openai_messages, to_openai_tools
from .pooling import pooled_sdk
from .sdk_errors import translate_sdk_error
from .shapes import SHAPE_ERRORS, BadShape, count_of, field_of, has_fields

# OpenAI accepts up to 2,048 inputs per embeddings request; stay well below for request size.
EMBED_BATCH = 512


def organization_key(provider: str, config: ProviderConfig) -> str:
    """The key for an organization's own server: its connection's, never the platform's.

    Without one the call fails here, before the SDK is built: given no key, every SDK looks
    in the process environment and would send the platform's key to that server.
    """
    if not config.api_key:
        raise LLMAuthError(
            "this organization's connection has its own base URL but no API key of its own; the "
            "platform's key is only sent to the provider's own endpoint: add the connection's own API key",
            provider=provider,
            model=config.model,
            code="no_credentials",
        )
    return config.api_key


def _embedding_batch(result: Any, *, size: int) -> tuple[list[list[float]], Usage]:
    """The vectors (in input order) and usage of one embeddings answer; BadShape otherwise."""
    items = field_of(result, "data")
    if not isinstance(items, list) or len(items) != size:
        raise BadShape(describe_answer(result) if not has_fields(result) else f"it has no list of {size} embeddings")
    # The API returns items with an index; do not rely on their order.
    ordered = sorted(items, key=lambda item: field_of(item, "index") or 0)
    vectors = [list(field_of(item, "embedding") or ()) for item in ordered]
    if any(
        not vector or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in vector)
        for vector in vectors
    ):
        raise BadShape("an embedding is not a list of numbers")
    usage = field_of(result, "usage")
    return vectors, Usage(input_tokens=count_of(usage, "prompt_tokens"), total=count_of(usage, "total_tokens"))


class OpenAIClient(LLMClient):
    provider: ClassVar[str] = "openai"
    supports_embeddings: ClassVar[bool] = True
    sdk_module: ClassVar[ModuleType] = openai
    # Reasoning models (o1, o3, ...) reject max_tokens; max_completion_tokens works for all.
    max_tokens_param: ClassVar[str] = "max_completion_tokens"
    empty_assistant_content: ClassVar[str | None] = None
    env_api_key: ClassVar[str | None] = "OPENAI_API_KEY"
    env_base_url: ClassVar[str | None] = "OPENAI_BASE_URL"
    # None: the SDK's default (base64 float32, a third of the JSON size); "float" for servers
    # that only know the plain list form.
    embedding_encoding: ClassVar[str | None] = None

    # -- SDK client construction (called by the registry, cached there) ----------------

    @classmethod
    def resolve_endpoint(cls, config: ProviderConfig) -> tuple[str | None, str | None]:
        """(api_key, base_url): the config's values, else the SDK's standard env vars; an
        organization's own server (``endpoint_guard``) gets its own key or none at all."""
        if config.endpoint_guard is not None:
            return organization_key(cls.provider, config), config.base_url
        api_key = config.api_key or (os.environ.get(cls.env_api_key) if cls.env_api_key else None) or None
        base_url = config.base_url or (os.environ.get(cls.env_base_url) if cls.env_base_url else None) or None
        return api_key, base_url

    @classmethod
    def build_sdk(cls, *, api_key: str | None, base_url: str | None, config: ProviderConfig) -> Any:
        return pooled_sdk(
            openai.OpenAI,
            default_http_client=openai.DefaultHttpxClient,
            http_module=httpx2,
            api_key=api_key,
            base_url=base_url,
            config=config,
            organization=config.organization if cls.provider == "openai" else None,
        )

    # -- protocol ------------------------------------------------------------------------

    def _request_kwargs(self, request: CompletionRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": to_openai_messages(request.messages, empty_content=self.empty_assistant_content),
            "timeout": self.config.timeout,
        }
        if request.tools:
            kwargs["tools"] = to_openai_tools(request.tools)
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.max_tokens is not None:
            kwargs[self.max_tokens_param] = request.max_tokens
        if request.extra:
            # Provider-specific parameters (tool_choice, response_format, seed, ...) go in the
            # JSON body as given; the SDK merges extra_body last.
            kwargs["extra_body"] = request.extra
        return kwargs

    def _stream_kwargs(self) -> dict[str, Any]:
        # Without include_usage a streamed completion reports no token counts at all.
        return {"stream_options": {"include_usage": True}}

    def _complete(self, request: CompletionRequest) -> LLMResponse:
        completion = self.sdk.chat.completions.create(**self._request_kwargs(request))
        return parse_completion(completion, provider=self.provider, requested_model=self.config.model)

    def _stream(self, request: CompletionRequest) -> Iterator[StreamEvent]:
        assembler = StreamAssembler(provider=self.provider, requested_model=self.config.model)
        stream = self.sdk.chat.completions.create(**self._request_kwargs(request), stream=True, **self._stream_kwargs())
        with stream:
            for chunk in stream:
                yield from assembler.feed(chunk)
        yield from assembler.finish_events()

    def _embed(self, texts: list[str], *, model: str, dimensions: int | None) -> EmbeddingResult:
        vectors: list[list[float]] = []
        usage = Usage()
        for start in range(0, len(texts), EMBED_BATCH):
            kwargs: dict[str, Any] = {"model": model, "input": texts[start : start + EMBED_BATCH]}
            if dimensions:
                kwargs["dimensions"] = dimensions
            if self.embedding_encoding:
                kwargs["encoding_format"] = self.embedding_encoding
            # The raw response first: the SDK's own parsing (base64 vectors) fails on an answer
            # of another shape, and that failure is the provider's, not a bug of ours.
            raw = self.sdk.embeddings.with_raw_response.create(**kwargs, timeout=self.config.timeout)
            result: Any = None
            try:
                result = raw.parse()
                batch, batch_usage = _embedding_batch(result, size=len(kwargs["input"]))
            except BadShape as exc:
                raise invalid_response("an embeddings list", str(exc), provider=self.provider, model=model) from None
            except SHAPE_ERRORS as exc:
                problem = (
                    f"{describe_answer(result)}; {type(exc).__name__}" if result is not None else type(exc).__name__
                )
                raise invalid_response("an embeddings list", problem, provider=self.provider, model=model) from None
            vectors.extend(batch)
            usage = usage + batch_usage
        return EmbeddingResult(vectors=vectors, usage=usage, model=model, provider=self.provider)

    def _translate(self, exc: Exception) -> LLMError | None:
        return translate_sdk_error(
            exc,
            sdk=self.sdk_module,
            provider=self.provider,
            model=self.config.model,
            secrets=(self.config.api_key, getattr(self.sdk, "api_key", None)),
            timeout=self.config.timeout,
        )
