"""Demo agents for a fresh install: one published agent per built-in template.

``bootstrap`` calls this on the first run so the first thing a person sees is agents that
answer. Without a provider key in the environment they talk to the ``sandbox`` provider,
whose answers start with "[sandbox]" so nobody takes them for a model's work; with a key
they use that provider's small, cheap model.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from accounts.access import Actor
from agents.models import Agent, AgentTemplate
from agents.services.platform import agent_create_from_template
from agents.services.versions import agent_publish
from config.api.errors import ApiError

logger = logging.getLogger(__name__)

SANDBOX_MODEL_CONFIG = {"provider": "sandbox", "model": "sandbox-echo"}
# First configured wins, in this order; small models, since demos should cost cents.
PROVIDER_DEMO_MODELS = (
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-3-5-haiku-20241022"),
    ("groq", "llama-3.1-8b-instant"),
)


def demo_model_config() -> dict[str, str]:
    """The first provider whose API key is configured (OPENAI_API_KEY, …), else the sandbox."""
    for provider, model in PROVIDER_DEMO_MODELS:
        if (settings.PROVIDER_ENV.get(provider) or {}).get("api_key"):
            return {"provider": provider, "model": model}
    return dict(SANDBOX_MODEL_CONFIG)


def demo_agents_create(*, actor: Actor) -> list[Agent]:
    """Create and publish one agent per template; a template that no longer validates is
    skipped with a warning rather than failing the whole first run."""
    model_config = demo_model_config()
    created: list[Agent] = []
    for template in AgentTemplate.objects.order_by("name"):
        data: dict[str, Any] = {"name": f"Demo: {template.name}", "model_config": model_config}
        try:
            agent = agent_create_from_template(actor=actor, template=template, data=data)
            agent_publish(actor=actor, agent=agent, changelog="Demo agent created by bootstrap.")
        except ApiError as exc:
            logger.warning("demo agent from template %s skipped: %s %s", template.key, exc.code, exc.details)
            continue
        agent.refresh_from_db()
        created.append(agent)
    return created
