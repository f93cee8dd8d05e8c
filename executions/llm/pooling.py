"""The pooled HTTP client every provider SDK is built with (one per cached SDK client, see
registry.py), set up the same way for each: our pool size and timeouts, no SDK retries (ours
are in retry.py), and an organization's own endpoint behind the SSRF guard."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from config.guarded_http import guarded_http_client

from .base import ProviderConfig

# One pooled HTTP client is shared by every worker thread of a process (see registry.py):
# size the pool for a thread pool of hundreds of in-flight runs, all kept alive.
DEFAULT_MAX_CONNECTIONS = 1000


def pool_options(config: ProviderConfig, module: ModuleType) -> tuple[Any, Any]:
    """(limits, timeout) of the HTTP client an SDK is built with, from ``module`` (httpx2 for
    the openai and anthropic SDKs, httpx for groq's)."""
    limit = int(config.extra.get("max_connections", DEFAULT_MAX_CONNECTIONS))
    return (
        module.Limits(max_connections=limit, max_keepalive_connections=limit),
        module.Timeout(config.timeout, connect=min(config.timeout, 10.0)),
    )


def pooled_sdk(
    sdk_class: type,
    *,
    default_http_client: type,
    http_module: ModuleType,
    api_key: str | None,
    base_url: str | None,
    config: ProviderConfig,
    **sdk_options: Any,
) -> Any:
    """``sdk_class`` (openai.OpenAI, anthropic.Anthropic, groq.Groq) on a pooled HTTP client of
    ``http_module``: the SDK's own ``default_http_client`` for the platform's endpoints, the
    guarded one for an organization's."""
    limits, timeout = pool_options(config, http_module)
    if config.endpoint_guard is not None:
        http_client = guarded_http_client(
            module=http_module, guard=config.endpoint_guard, limits=limits, timeout=timeout
        )
    else:
        http_client = default_http_client(limits=limits, timeout=timeout)
    return sdk_class(
        api_key=api_key,
        base_url=base_url,
        timeout=config.timeout,
        max_retries=0,  # retries are ours (retry.py), bounded per ProviderConfig
        default_headers=config.extra.get("default_headers"),
        http_client=http_client,
        **{name: value for name, value in sdk_options.items() if value is not None},
    )
