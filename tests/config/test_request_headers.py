"""Headers the API reads are hostile input too (security issue #14 follow-up): a control
character in any of them (a NUL reached PostgreSQL and answered 500) is a 400 in the error
shape naming the header, with nothing written; over-long keys are a 400 naming the header;
a non-ASCII digit is never taken for a number."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from agents.models import AgentChain, ChainExecution
from agents.services import agent_activate, agent_create, agent_publish
from agents.services.chains import chain_create
from executions.models import Execution, ExecutionEvent
from executions.services import execution_start
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

CONTROL = {"nul": "retry\x00-1", "soh": "retry\x01-1", "newline": "retry\n-1", "escape": "retry\x1b-1", "del": "x\x7f"}


@pytest.fixture
def targets(org, owner_actor):
    """An agent that runs on execute and on the ``order.created`` event, and a chain of it."""
    agent = agent_create(
        actor=owner_actor, data={"name": "Runner", "system_prompt": "Run.", "trigger_events": ["order.*"]}
    )
    agent_publish(actor=owner_actor, agent=agent)
    agent_activate(actor=owner_actor, agent=agent)
    agent.refresh_from_db()
    step = {"id": "only", "agent_id": str(agent.pk), "input_mapping": {"task": "{{input.topic}}"}}
    chain = chain_create(actor=owner_actor, data={"name": "Chain", "steps": [step]})
    return agent, chain


def _doors(agent, chain: AgentChain) -> dict[str, tuple[str, dict]]:
    return {
        "execute": (f"/api/v1/agents/{agent.pk}/execute/", {"task": "Hello"}),
        "chain": (f"/api/v1/chains/{chain.pk}/execute/", {"input": {"topic": "x"}}),
        "events": ("/api/v1/events/", {"type": "order.created", "payload": {}}),
    }


@pytest.mark.parametrize("door", ["execute", "chain", "events"])
@pytest.mark.parametrize("value", CONTROL.values(), ids=CONTROL.keys())
def test_an_idempotency_key_with_a_control_character_is_refused_naming_it(alice, client_for, targets, door, value):
    path, body = _doors(*targets)[door]
    response = client_for(alice).post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=value)
    error = assert_error(response, 400, "InvalidInput")
    assert list(error["details"]["validation_errors"]) == ["Idempotency-Key"], error
    assert "control character" in error["details"]["validation_errors"]["Idempotency-Key"][0]
    assert "Idempotency-Key" in error["message"]
    assert not Execution.objects.exists() and not ChainExecution.objects.exists()


@pytest.mark.parametrize(("door", "longest"), [("execute", 200), ("chain", 200), ("events", 150)])
def test_an_idempotency_key_over_its_length_is_refused_naming_it(alice, client_for, targets, door, longest):
    path, body = _doors(*targets)[door]
    api = client_for(alice)
    error = assert_error(
        api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="k" * (longest + 1)), 400, "InvalidInput"
    )
    assert list(error["details"]["validation_errors"]) == ["Idempotency-Key"], error
    assert not Execution.objects.exists() and not ChainExecution.objects.exists()
    accepted = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="k" * longest)
    assert accepted.status_code == 202, accepted.content


def test_x_organization_with_a_control_character_is_refused_naming_it(alice):
    browser = Client()
    browser.force_login(alice)
    error = assert_error(browser.get("/api/v1/agents/", HTTP_X_ORGANIZATION="acme\x00"), 400, "InvalidInput")
    assert list(error["details"]["validation_errors"]) == ["X-Organization"]
    assert browser.get("/api/v1/agents/", HTTP_X_ORGANIZATION="acme").status_code == 200


def test_if_match_with_a_control_character_is_refused_and_the_draft_is_unchanged(alice, client_for, targets):
    agent, _ = targets
    api = client_for(alice)
    response = api.patch(f"/api/v1/agents/{agent.pk}/", {"description": "new"}, format="json", HTTP_IF_MATCH='"a\x00"')
    error = assert_error(response, 400, "InvalidInput")
    assert list(error["details"]["validation_errors"]) == ["If-Match"]
    assert api.get(f"/api/v1/agents/{agent.pk}/").json()["description"] == ""


def test_any_header_with_a_control_character_is_refused_on_pages_too(client):
    response = client.get("/", HTTP_X_ANYTHING="a\x00b")
    assert response.status_code == 400 and "X-Anything" in response.content.decode()
    assert client.get("/", HTTP_X_ANYTHING="a\tb").status_code == 200  # a tab is allowed in a field value


def test_a_bad_request_id_is_replaced_not_echoed(alice, client_for):
    response = client_for(alice).get("/api/v1/agents/", HTTP_X_REQUEST_ID="id with spaces")
    assert response.status_code == 200 and response["X-Request-ID"] != "id with spaces"


async def _read(response) -> str:
    return "".join([chunk.decode() async for chunk in response.streaming_content])


@pytest.mark.parametrize("value", ["\u00b2", "\u0661", "12\u00b2"])
def test_last_event_id_takes_only_ascii_digits(org, alice, client_for, targets, value):
    agent, _ = targets
    execution, _ = execution_start(agent=agent, organization=org, task="t")
    Execution.objects.filter(pk=execution.pk).update(status="completed")
    for seq, event in enumerate(["execution_started", "execution_completed"], start=1):
        ExecutionEvent.objects.create(execution=execution, seq=seq, event=event, data={})
    api = client_for(alice)
    for response in (
        api.get(f"/api/v1/executions/{execution.pk}/stream/", HTTP_LAST_EVENT_ID=value),
        api.get(f"/api/v1/executions/{execution.pk}/stream/", {"last_event_id": value}),
    ):
        assert response.status_code == 200
        # Not a number: the stream starts from the beginning, as for any other non-number.
        streamed = async_to_sync(_read)(response)
        assert "event: execution_started" in streamed and "event: execution_completed" in streamed
