"""LLM clients: one interface over OpenAI, Anthropic, Groq, OpenAI-compatible servers and a
labelled offline sandbox. No Django, no database: plain dataclasses in, plain dataclasses out.

    from executions.llm import ProviderConfig, get_client, complete_with_fallback

    client = get_client(ProviderConfig(provider="openai", model="gpt-4o", api_key=key))
    response = client.complete(messages, tools=tools, temperature=0.2, max_tokens=1024)
"""

from .base import (
    ChatMessage,
    CompletionRequest,
    EmbeddingResult,
    EndpointGuard,
    LLMClient,
    LLMResponse,
    ProviderConfig,
    StreamEvent,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from .errors import (
    LLMAuthError,
    LLMBadRequest,
    LLMConfigurationError,
    LLMError,
    LLMInvalidResponse,
    LLMProviderUnavailable,
    LLMRateLimited,
    LLMUnsupported,
)
from .registry import (
    FallbackAttempt,
    FallbackResult,
    clear_client_cache,
    complete_with_fallback,
    get_client,
    stream_with_fallback,
)

__all__ = [
    "ChatMessage",
    "CompletionRequest",
    "EmbeddingResult",
    "EndpointGuard",
    "FallbackAttempt",
    "FallbackResult",
    "LLMAuthError",
    "LLMBadRequest",
    "LLMClient",
    "LLMConfigurationError",
    "LLMError",
    "LLMInvalidResponse",
    "LLMProviderUnavailable",
    "LLMRateLimited",
    "LLMResponse",
    "LLMUnsupported",
    "ProviderConfig",
    "StreamEvent",
    "ToolCallRequest",
    "ToolSpec",
    "Usage",
    "clear_client_cache",
    "complete_with_fallback",
    "get_client",
    "stream_with_fallback",
]
