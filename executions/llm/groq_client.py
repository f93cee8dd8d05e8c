"""Groq via its official SDK. The wire shape is OpenAI's chat completions, with two quirks:
streamed usage arrives in the last chunk's ``x_groq.usage`` (the SDK has no ``stream_options``),
and there is no embeddings endpoint."""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

import groq
import httpx

from .base import ProviderConfig
from .openai_client import DEFAULT_MAX_CONNECTIONS, OpenAIClient


class GroqClient(OpenAIClient):
    provider: ClassVar[str] = "groq"
    supports_embeddings: ClassVar[bool] = False
    sdk_module: ClassVar[ModuleType] = groq
    max_tokens_param: ClassVar[str] = "max_completion_tokens"
    env_api_key: ClassVar[str | None] = "GROQ_API_KEY"
    env_base_url: ClassVar[str | None] = "GROQ_BASE_URL"

    @classmethod
    def build_sdk(cls, *, api_key: str | None, base_url: str | None, config: ProviderConfig) -> Any:
        limit = int(config.extra.get("max_connections", DEFAULT_MAX_CONNECTIONS))
        return groq.Groq(
            api_key=api_key,
            base_url=base_url,
            timeout=config.timeout,
            max_retries=0,  # retries are ours (retry.py)
            default_headers=config.extra.get("default_headers"),
            # The Groq SDK's default pool keeps only 20 connections alive; a threaded worker
            # with hundreds of runs in flight would reconnect constantly.
            http_client=groq.DefaultHttpxClient(
                limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
                timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0)),
            ),
        )

    def _stream_kwargs(self) -> dict[str, Any]:
        return {}
