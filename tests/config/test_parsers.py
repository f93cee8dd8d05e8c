"""Every JSON body: nesting bounded and NUL characters refused, with a 400 naming the field,
before anything is written (they were 500s: Python's recursive decoder, and PostgreSQL, whose
text and jsonb cannot store \\u0000)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import ActivityLog
from agents.models import Agent, AgentChain, ProviderConnection
from config.api.json_input import MAX_JSON_DEPTH
from executions.models import Execution, ScheduledExecution
from tests.agents.conftest import body as agent_body
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.fixture
def runnable(make_agent, owner_actor):
    from agents.services import agent_activate

    agent = make_agent(name="Target")
    agent_activate(actor=owner_actor, agent=agent)
    return agent


# (family, user, path, body, rows that must stay as they were, field named)
Family = tuple[str, str, Callable[[Any], str], Callable[[Any], Any], type, str]
FAMILIES: list[Family] = [
    ("agent metadata", "alice", lambda a: "/api/v1/agents/", lambda a: agent_body(metadata={"note": "x\u0000y"}),
     Agent, "metadata.note"),
    ("metadata key", "alice", lambda a: "/api/v1/agents/", lambda a: agent_body(metadata={"k\u0000": 1}), Agent,
     "metadata.k\\u0000"),
    ("metadata 200 deep", "alice", lambda a: "/api/v1/agents/", lambda a: agent_body(metadata=nested(200)), Agent,
     "metadata.a.a.a.a.a.a.a.a.a.…"),
    ("goals", "alice", lambda a: "/api/v1/agents/", lambda a: agent_body(goals=[{"name": "Grow\u0000"}]), Agent,
     "goals.0.name"),
    ("constraints", "alice", lambda a: "/api/v1/agents/", lambda a: agent_body(constraints=["Be nice\u0000"]), Agent,
     "constraints.0"),
    ("execute context", "alice", lambda a: f"/api/v1/agents/{a.pk}/execute/",
     lambda a: {"task": "Go", "context": {"customer": {"name": "\u0000"}}}, Execution, "context.customer.name"),
    ("schedule input", "alice", lambda a: "/api/v1/schedules/",
     lambda a: {"agent_id": str(a.pk), "cron_expression": "0 9 * * *", "input": {"task": "Report\u0000"}},
     ScheduledExecution, "input.task"),
    ("chain name", "alice", lambda a: "/api/v1/chains/",
     lambda a: {"name": "Chain\u0000", "steps": [{"id": "one", "agent_id": str(a.pk)}]}, AgentChain, "name"),
    ("connection name", "adam", lambda a: "/api/v1/provider-connections/",
     lambda a: {"provider": "openai", "name": "Main\u0000", "api_key": "sk-test-123456789"}, ProviderConnection,
     "name"),
]  # fmt: skip


@pytest.mark.parametrize(("family", "who", "path", "payload", "model", "field"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_hostile_bodies_are_refused_naming_the_field_and_nothing_is_written(
    request, runnable, client_for, family, who, path, payload, model, field
):
    api = client_for(request.getfixturevalue(who))
    before = (model.objects.count(), ActivityLog.objects.count())
    response = api.post(path(runnable), payload(runnable), format="json")
    error = assert_error(response, 400, "InvalidInput")
    assert list(error["details"]["validation_errors"]) == [field], error
    assert (model.objects.count(), ActivityLog.objects.count()) == before


def test_a_raw_body_nested_1000_deep_is_refused(alice, client_for):
    for raw in ("[" * 1000 + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000):
        response = client_for(alice).post("/api/v1/agents/", raw, content_type="application/json")
        error = assert_error(response, 400, "InvalidInput")
        assert f"deeper than {MAX_JSON_DEPTH} levels" in error["message"]
    assert not Agent.objects.exists()


def test_nesting_up_to_the_bound_is_accepted(alice, client_for):
    # The body is level 1, metadata level 2: MAX_JSON_DEPTH - 1 levels of metadata fit.
    response = client_for(alice).post("/api/v1/agents/", agent_body(metadata=nested(MAX_JSON_DEPTH - 1)), format="json")
    assert response.status_code == 201, response.content[:300]
    response = client_for(alice).post(
        "/api/v1/agents/", agent_body(name="Two", metadata=nested(MAX_JSON_DEPTH)), format="json"
    )
    assert_error(response, 400, "InvalidInput")


def test_escaped_backslashes_are_not_nul(alice, client_for):
    # The text \u0000 (an escaped backslash, then "u0000") is six ordinary characters.
    raw = json.dumps(agent_body(metadata={"note": "\\u0000"}))
    response = client_for(alice).post("/api/v1/agents/", raw, content_type="application/json")
    assert response.status_code == 201, response.content[:300]
    assert Agent.objects.get().metadata == {"note": "\\u0000"}
