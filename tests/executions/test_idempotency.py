"""Idempotency-Key is the caller's, per agent (or chain), and answers only the same request
(security issue #14, M1)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from accounts.access import Actor
from accounts.models import Membership
from agents.models import ChainExecution
from agents.services.agents import agent_create
from agents.services.chains import chain_create
from agents.services.versions import agent_publish
from executions.models import Execution
from tests.conftest import assert_error

KEY = {"HTTP_IDEMPOTENCY_KEY": "retry-42"}


def _execute(client, agent, **body):
    return client.post(f"/api/v1/agents/{agent.pk}/execute/", {"task": "Hello", **body}, format="json", **KEY)


def _actor(user, org) -> Actor:
    return Actor(organization=org, user=user, membership=Membership.objects.get(user=user, organization=org))


def _published(user, org, **data):
    agent = agent_create(actor=_actor(user, org), data={"system_prompt": "Help.", **data})
    agent_publish(actor=_actor(user, org), agent=agent)
    agent.refresh_from_db()
    return agent


@pytest.mark.django_db
def test_a_members_key_never_returns_an_owners_run(org, alice, mia, client_for):
    private = _published(alice, org, name="Owner's private", visibility="private")
    shared = _published(mia, org, name="Mia's")
    owners = _execute(client_for(alice), private, task="Summarise the board minutes", context={"secret": 1})
    assert owners.status_code == 202

    response = _execute(client_for(mia), shared, task="Say hi")
    assert response.status_code == 202, response.content
    body = response.json()
    assert "Idempotent-Replayed" not in response
    assert body["id"] != owners.json()["id"] and body["agent_id"] == str(shared.pk)
    assert body["input"] == {"task": "Say hi", "context": {}}
    assert "board minutes" not in response.content.decode()
    assert Execution.objects.count() == 2


@pytest.mark.django_db
def test_one_callers_key_on_two_agents_is_two_runs(org, alice, client_for):
    first, second = _published(alice, org, name="One"), _published(alice, org, name="Two")
    api = client_for(alice)
    assert _execute(api, first).json()["id"] != _execute(api, second).json()["id"]
    replay = _execute(api, first)
    assert replay["Idempotent-Replayed"] == "true"
    assert Execution.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changed", [{"task": "Something else"}, {"context": {"a": 2}}, {"max_tokens": 50}], ids=["task", "context", "max"]
)
def test_a_key_reused_with_a_different_body_is_refused(org, alice, client_for, changed):
    agent = _published(alice, org, name="Runner")
    api = client_for(alice)
    first = _execute(api, agent, context={"a": 1})
    assert first.status_code == 202
    error = assert_error(_execute(api, agent, **{"context": {"a": 1}, **changed}), 422, "IdempotencyKeyMismatch")
    assert error["details"] == {"idempotency_key": "retry-42", "first_request": first.json()["id"]}
    # The same body again is the same run; the person's other token and session share the key.
    assert _execute(client_for(alice), agent, context={"a": 1}).json()["id"] == first.json()["id"]
    assert Execution.objects.count() == 1


@pytest.mark.django_db
def test_runs_from_before_keys_had_a_caller_answer_only_their_own_person(org, alice, mia, client_for):
    agent = _published(alice, org, name="Shared")
    legacy = _execute(client_for(alice), agent).json()["id"]
    Execution.objects.filter(pk=legacy).update(idempotency_caller=None, request_fingerprint=None)
    assert _execute(client_for(alice), agent).json()["id"] == legacy  # a retry across the upgrade
    assert _execute(client_for(mia), agent).json()["id"] != legacy


@pytest.mark.django_db
def test_the_unique_index_is_per_caller_and_agent_and_the_organization_wide_one_is_gone():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('executions_execution', "
            "'agents_chainexecution') AND indexdef LIKE '%%idempotency_key%%'"
        )
        found = dict(cursor.fetchall())
    assert set(found) == {"exec_idempotency_caller", "chainexec_idempotency_caller"}
    assert all("UNIQUE" in definition and "idempotency_caller" in definition for definition in found.values())


@pytest.mark.django_db(transaction=True)
def test_simultaneous_requests_with_one_key_make_one_run(org, alice, client_for):
    agent = _published(alice, org, name="Racer")
    api = client_for(alice)

    def send(task: str):
        try:
            return _execute(api, agent, task=task)
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        same = list(pool.map(send, ["Same"] * 6))
        mixed = list(pool.map(send, ["Same", "Different", "Different", "Same"]))
    assert {r.status_code for r in same} <= {200, 202} and len({r.json()["id"] for r in same}) == 1
    assert sorted({r.status_code for r in mixed}) == [202, 422]
    assert Execution.objects.count() == 1


# --- chains --------------------------------------------------------------------------------


def _chain(user, org, name, agent):
    step = {"id": "only", "agent_id": str(agent.pk), "input_mapping": {"task": "{{input.topic}}"}}
    return chain_create(actor=_actor(user, org), data={"name": name, "steps": [step]})


def _run_chain(client, chain, **input_):
    return client.post(f"/api/v1/chains/{chain.pk}/execute/", {"input": input_}, format="json", **KEY)


@pytest.mark.django_db
def test_chain_keys_are_the_callers_per_chain_and_bodies_must_match(org, alice, mia, client_for):
    agent = _published(alice, org, name="Step")
    owners_chain, members_chain = _chain(alice, org, "Owner's", agent), _chain(mia, org, "Mia's", agent)
    owners = _run_chain(client_for(alice), owners_chain, topic="layoffs")
    assert owners.status_code == 202, owners.content

    members = _run_chain(client_for(mia), members_chain, topic="otters")
    assert members.status_code == 202 and members.json()["id"] != owners.json()["id"]
    assert "layoffs" not in members.content.decode()
    again = _run_chain(client_for(mia), owners_chain, topic="layoffs")  # another caller, same chain
    assert again.status_code == 202 and again.json()["id"] != owners.json()["id"]

    assert _run_chain(client_for(alice), owners_chain, topic="layoffs").json()["id"] == owners.json()["id"]
    error = assert_error(_run_chain(client_for(alice), owners_chain, topic="mergers"), 422, "IdempotencyKeyMismatch")
    assert error["details"]["first_request"] == owners.json()["id"]
    assert ChainExecution.objects.count() == 3
