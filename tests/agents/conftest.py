"""Helpers for the agents tests: actors, agents made through the services, valid bodies."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.access import Actor
from accounts.models import Membership
from agents import services


def actor_of(user, organization=None) -> Actor:
    membership = Membership.objects.select_related("organization").get(
        user=user, **({"organization": organization} if organization else {})
    )
    return Actor(organization=membership.organization, user=user, membership=membership)


def body(**overrides: Any) -> dict[str, Any]:
    """A valid agent body (API shape)."""
    data: dict[str, Any] = {
        "name": "Support Bot",
        "description": "Answers support questions.",
        "agent_type": "specialist",
        "domain": "support",
        "personality": {"traits": ["patient", "precise"], "tone": "casual"},
        "system_prompt": "You answer customer questions about Acme products.",
        "goals": [{"name": "Reliability", "metric": "success_rate", "target": 90, "comparison": "gte"}],
        "constraints": ["Never promise refunds"],
        "examples": [{"input": "Where is my order?", "output": "Let me check the order status for you."}],
        "model_config": {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.3},
        "allowed_tools": ["crm_*", "email_draft"],
        "trigger_events": ["crm.contact.*"],
        "trigger_schedule": "0 9 * * 1-5",
        "trigger_timezone": "Europe/Paris",
    }
    data.update(overrides)
    return data


@pytest.fixture(autouse=True)
def _reference_tools(monkeypatch):
    """Pattern warnings are checked against the reference's built-in tool names, whatever the
    tools app has (or has not yet) seeded in the test database; test_tooling covers the hook."""
    from agents.tooling import REFERENCE_TOOL_NAMES

    monkeypatch.setattr("agents.selectors.available_tool_names", lambda organization: list(REFERENCE_TOOL_NAMES))


@pytest.fixture
def make_agent():
    """make_agent(user, **body_overrides) -> Agent created through agent_create as ``user``."""

    def make(user, organization=None, **overrides: Any):
        return services.agent_create(actor=actor_of(user, organization), data=body(**overrides))

    return make


@pytest.fixture
def published(make_agent, alice):
    """An organization-visible agent of alice's, published as 1.0.0."""
    agent = make_agent(alice, name="Published Bot")
    services.agent_publish(actor=actor_of(alice), agent=agent, changelog="first")
    agent.refresh_from_db()
    return agent


@pytest.fixture
def runnable(owner_actor):
    """runnable(name) -> a published agent of org (the runtime's make_agent, by name)."""

    def make(name: str) -> Any:
        agent = services.agent_create(actor=owner_actor, data={"name": name, "system_prompt": "You are a test agent."})
        services.agent_publish(actor=owner_actor, agent=agent)
        agent.refresh_from_db()
        return agent

    return make
