"""Groq via its official SDK. The wire shape is OpenAI's chat completions, with two quirks:
streamed usage arrives in the last chunk's ``x_groq.usage`` (the SDK has no ``stream_options``),
and there is no embeddings endpoint."""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

import groq
import httpx

from .base import ProviderConfig
from .openai_client import OpenAIClient
from .pooling import pooled_sdk


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
        return pooled_sdk(
            groq.Groq,
            default_http_client=groq.DefaultHttpxClient,
            http_module=httpx,
            api_key=api_key,
            base_url=base_url,
            config=config,
        )

    def _stream_kwargs(self) -> dict[str, Any]:
        return {}
