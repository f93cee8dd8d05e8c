"""Helpers for the trigger tests: active agents, signed requests, another organization."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from accounts.access import Actor
from accounts.models import Membership
from agents.models import Agent
from agents.services import agent_activate, agent_create, agent_publish
from executions.triggers.signing import signature_for


@pytest.fixture
def active_agent(make_agent, owner_actor) -> Callable[..., Agent]:
    """active_agent(**fields) -> a published, activated agent of ``org``."""

    def make(**fields: Any) -> Agent:
        agent = make_agent(**fields)
        agent_activate(actor=owner_actor, agent=agent)
        agent.refresh_from_db()
        return agent

    return make


@pytest.fixture
def oscar_actor(other_org, oscar) -> Actor:
    return Actor(organization=other_org, user=oscar, membership=Membership.objects.get(user=oscar))


@pytest.fixture
def other_active_agent(oscar_actor) -> Callable[..., Agent]:
    """other_active_agent(**fields) -> a published, activated agent of ``other_org``."""

    def make(**fields: Any) -> Agent:
        data = {"name": fields.pop("name", "Theirs"), "system_prompt": "You work for Globex."}
        data.update(fields)
        agent = agent_create(actor=oscar_actor, data=data)
        agent_publish(actor=oscar_actor, agent=agent)
        agent_activate(actor=oscar_actor, agent=agent)
        agent.refresh_from_db()
        return agent

    return make


def signed(body: dict | bytes, secret: str, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body bytes and the headers of a correctly signed hook request."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return raw, {
        "HTTP_X_AGENTRY_TIMESTAMP": stamp,
        "HTTP_X_AGENTRY_SIGNATURE": signature_for(secret, stamp, raw),
    }
