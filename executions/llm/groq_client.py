"""Groq via its official SDK. The wire shape is OpenAI's chat completions, with two quirks:
streamed usage arrives in the last chunk's ``x_groq.usage`` (the SDK has no ``stream_options``),
and there is no embeddings endpoint."""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

import groq
import httpx

from config.guarded_http import guarded_http_client

from .base import ProviderConfig
from .openai_client import OpenAIClient, pool_options


class GroqClient(OpenAIClient):
    provider: ClassVar[str] = "groq"
    supports_embeddings: ClassVar[bool] = False
    sdk_module: ClassVar[ModuleType] = groq
    max_tokens_param: ClassVar[str] = "max_completion_tokens"
    env_api_key: ClassVar[str | None] = "GROQ_API_KEY"
    env_base_url: ClassVar[str | None] = "GROQ_BASE_URL"

    @classmethod
    def build_sdk(cls, *, api_key: str | None, base_url: str | None, config: ProviderConfig) -> Any:
        # The Groq SDK's default pool keeps only 20 connections alive; a threaded worker
        # with hundreds of runs in flight would reconnect constantly.
        limits, timeout = pool_options(config, httpx)
        if config.endpoint_guard is not None:
            http_client = guarded_http_client(module=httpx, guard=config.endpoint_guard, limits=limits, timeout=timeout)
        else:
            http_client = groq.DefaultHttpxClient(limits=limits, timeout=timeout)
        return groq.Groq(
            api_key=api_key,
            base_url=base_url,
            timeout=config.timeout,
            max_retries=0,  # retries are ours (retry.py)
            default_headers=config.extra.get("default_headers"),
            http_client=http_client,
        )

    def _stream_kwargs(self) -> dict[str, Any]:
        return {}
