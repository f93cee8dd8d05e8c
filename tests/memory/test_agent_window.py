"""An agent's own conversation window (``memory: {context_window, max_history}``, versioned),
falling back to the platform's settings."""

from __future__ import annotations

import uuid

import pytest

from bench.fakes.script import text
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def turn(agent, org, fake, task: str, conversation_id) -> list[str]:
    fake.script(text(f"re: {task}"))
    execution, _ = execution_start(agent=agent, organization=org, task=task, conversation_id=conversation_id)
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    return [m["content"] for m in fake.chat_requests[-1].body["messages"][1:]]


def test_the_agents_window_wins_over_the_settings(org, make_agent, providers_at_fake, settings):
    settings.MEMORY_HISTORY_MAX_MESSAGES = 20
    narrow = make_agent(name="Narrow", memory={"max_history": 2})
    wide = make_agent(name="Wide")
    assert narrow.memory_config == {"max_history": 2} and wide.memory_config == {}
    assert narrow.current_version.config["memory"] == {"max_history": 2}  # versioned
    for agent in (narrow, wide):
        conversation = uuid.uuid4()
        for n in range(3):
            sent = turn(agent, org, providers_at_fake, f"message {n}", conversation)
        if agent is narrow:
            assert sent == ["message 1", "re: message 1", "message 2"]
        else:
            assert sent == ["message 0", "re: message 0", "message 1", "re: message 1", "message 2"]


def test_a_token_window_and_bad_settings(org, alice, make_agent, providers_at_fake, client_for):
    tight = make_agent(name="Tight", memory={"context_window": 100})
    conversation = uuid.uuid4()
    turn(tight, org, providers_at_fake, "x " * 300, conversation)  # ~300 tokens: over the window
    assert turn(tight, org, providers_at_fake, "short", conversation) == ["short"]

    api = client_for(alice)
    for memory, field in (
        ({"context_window": 10}, "memory.context_window"),
        ({"max_history": "lots"}, "memory.max_history"),
        ({"forget_after": 3}, "memory.forget_after"),
    ):
        response = api.post("/api/v1/agents/", {"name": "Bad", "system_prompt": "x", "memory": memory}, format="json")
        error = assert_error(response, 400, "InvalidAgentConfig")
        assert field in error["details"]["validation_errors"], error
    shown = api.get(f"/api/v1/agents/{tight.pk}/").json()
    assert shown["memory"] == {"context_window": 100}
