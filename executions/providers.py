"""Which provider endpoints and keys a run talks to.

Order: the agent's model first, then its ``fallbacks`` in order. For each, the key and base
URL come from the organization's provider connection when one exists (added with provider
connections), else from the SDKs' standard environment variables (settings.PROVIDER_ENV).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from executions.llm.base import ProviderConfig

# Per-call network timeout; the run's own timeout_seconds bounds the whole run.
LLM_TIMEOUT_SECONDS = 60
LLM_MAX_RETRIES = 2


def provider_configs(*, model_config: dict[str, Any], organization_id: Any = None) -> list[ProviderConfig]:
    chain = [{"provider": model_config["provider"], "model": model_config["model"]}]
    chain += [f for f in model_config.get("fallbacks") or [] if isinstance(f, dict)]
    configs = []
    for entry in chain:
        provider = entry["provider"]
        # openai_compatible servers never get the platform's OpenAI key: it would hand that
        # key to whatever server an agent names. They take their own key or none.
        env = settings.PROVIDER_ENV.get(provider, {})
        configs.append(
            ProviderConfig(
                provider=provider,
                model=entry["model"],
                api_key=entry.get("api_key") or env.get("api_key") or None,
                base_url=entry.get("base_url") or env.get("base_url") or None,
                timeout=LLM_TIMEOUT_SECONDS,
                max_retries=LLM_MAX_RETRIES,
                extra=dict(model_config.get("extra") or {}),
            )
        )
    return configs
