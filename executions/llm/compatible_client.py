"""Any server speaking OpenAI's chat completions: Ollama, vLLM, LM Studio, llama.cpp, and
Google Gemini's OpenAI endpoint (https://generativelanguage.googleapis.com/v1beta/openai/).

The OpenAI SDK with an explicit base URL. It deliberately ignores OPENAI_API_KEY and
OPENAI_BASE_URL: sending the platform's OpenAI key to an arbitrary self-hosted server would leak it.
"""

from __future__ import annotations

from typing import ClassVar

from .base import ProviderConfig
from .errors import LLMConfigurationError
from .openai_client import OpenAIClient

# Local servers need no key, but the SDK refuses to start without one; they ignore the header.
PLACEHOLDER_API_KEY = "not-needed"


class CompatibleClient(OpenAIClient):
    provider: ClassVar[str] = "openai_compatible"
    supports_embeddings: ClassVar[bool] = True
    # Many compatible servers predate max_completion_tokens and silently ignore it.
    max_tokens_param: ClassVar[str] = "max_tokens"
    # LM Studio and older llama.cpp reject a null assistant content next to tool calls.
    empty_assistant_content: ClassVar[str | None] = ""
    # Not every server decodes base64 embeddings (older Ollama builds return floats only).
    embedding_encoding: ClassVar[str | None] = "float"
    env_api_key: ClassVar[str | None] = None
    env_base_url: ClassVar[str | None] = None

    @classmethod
    def resolve_endpoint(cls, config: ProviderConfig) -> tuple[str | None, str | None]:
        if not config.base_url:
            raise LLMConfigurationError(
                "an openai_compatible provider needs a base_url (for example http://localhost:11434/v1)",
                provider=cls.provider,
                model=config.model,
            )
        return config.api_key or PLACEHOLDER_API_KEY, config.base_url

    def _stream_kwargs(self) -> dict[str, object]:
        # Ollama, vLLM and Gemini honour include_usage; a server that rejects unknown fields
        # can be served with extra={"stream_usage": False} (the response then has zero usage).
        if self.config.extra.get("stream_usage", True) is False:
            return {}
        return super()._stream_kwargs()
