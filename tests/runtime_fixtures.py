"""Runtime fixtures shared by every test package (imported by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from accounts.access import Actor
from accounts.models import Membership
from agents.models import Agent
from agents.services.agents import agent_create
from agents.services.versions import agent_publish
from executions.runtime.tools_port import LocalTool, register_local_tool, unregister_local_tool
from tests.fakes.fixtures import FAKE_API_KEY


@pytest.fixture
def providers_at_fake(settings, fake_llm):
    """Point every provider's SDK at the fake server (as OPENAI_BASE_URL etc. would)."""
    settings.PROVIDER_ENV = {
        "openai": {"api_key": FAKE_API_KEY, "base_url": fake_llm.openai_base_url},
        "anthropic": {"api_key": FAKE_API_KEY, "base_url": fake_llm.anthropic_base_url},
        "groq": {"api_key": FAKE_API_KEY, "base_url": fake_llm.groq_base_url},
    }
    return fake_llm


@pytest.fixture
def owner_actor(org, alice) -> Actor:
    return Actor(organization=org, user=alice, membership=Membership.objects.get(user=alice, organization=org))


@pytest.fixture
def make_agent(owner_actor) -> Callable[..., Agent]:
    """make_agent(**fields) -> a published agent of ``org`` (fields as in the API body)."""

    def make(**fields: Any) -> Agent:
        data = {"name": fields.pop("name", "Runner"), "system_prompt": "You are a careful test agent."}
        data.update(fields)
        agent = agent_create(actor=owner_actor, data=data)
        agent_publish(actor=owner_actor, agent=agent)
        agent.refresh_from_db()
        return agent

    return make


@pytest.fixture
def echo_tool():
    calls: list[dict] = []

    def handler(*, context, text: str) -> dict:
        calls.append({"text": text, "key": context.idempotency_key})
        return {"echo": text}

    register_local_tool(
        LocalTool(
            name="echo",
            handler=handler,
            description="Repeat the text back.",
            parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        )
    )
    yield calls
    unregister_local_tool("echo")
