"""Chains are validated as a whole before save: agents that exist and can run, mappings and
conditions that name earlier outputs only, no fallback cycles — a clear 400, nothing saved."""

from __future__ import annotations

import pytest

from agents.models import AgentChain
from agents.services import agent_archive, agent_create
from tests.chains.conftest import step
from tests.conftest import assert_error


def _post(client, body):
    return client.post("/api/v1/chains/", body, format="json")


@pytest.fixture
def two(role_agent):
    return role_agent("echo", name="Researcher"), role_agent("echo", name="Writer")


def test_a_valid_chain_is_saved(alice, two, client_for):
    researcher, writer = two
    body = {
        "name": "Research and write",
        "steps": [
            step("research", researcher, input_mapping={"task": "Research {{input.topic}}", "topic": "input.topic"},
                 output_mapping={"notes": "output.text"}, timeout_seconds=60),
            step("write", writer, input_mapping={"task": "Write from: {{vars.notes}}", "status": "steps.research.status"},
                 condition="steps.research.status == 'completed' and input.publish != false"),
        ],
        "error_handling": {"strategy": "stop"},
        "retry_policy": {"max_retries": 2, "backoff_seconds": 0.5},
    }  # fmt: skip
    response = _post(client_for(alice), body)
    assert response.status_code == 201, response.content
    chain = response.json()
    assert chain["retry_policy"] == {"max_retries": 2, "backoff_seconds": 0.5, "backoff_multiplier": 2.0}
    assert chain["error_handling"] == {"strategy": "stop", "fallback_step": None} and chain["status"] == "active"
    assert [s["id"] for s in chain["steps"]] == ["research", "write"]


@pytest.mark.parametrize(
    ("steps", "handling", "where", "fragment"),
    [
        # Fallbacks that loop.
        (
            lambda a, b: [
                step("one", a, on_error="fallback", fallback_step="two"),
                step("two", b, on_error="fallback", fallback_step="one"),
            ],
            None,
            "steps",
            "cycle",
        ),
        (
            lambda a, b: [step("one", a, on_error="fallback", fallback_step="one")],
            None,
            "steps.0.fallback_step",
            "itself",
        ),
        (
            lambda a, b: [
                step("one", a, on_error="fallback", fallback_step="three"),
                step("two", b, on_error="fallback", fallback_step="three"),
                step("three", a, on_error="fallback", fallback_step="two"),
            ],
            None,
            "steps",
            "cycle",
        ),
        # Mappings and conditions to outputs that do not exist before the step.
        (
            lambda a, b: [step("one", a, input_mapping={"x": "vars.summary"})],
            None,
            "steps.0.input_mapping.x",
            "summary",
        ),
        (
            lambda a, b: [
                step("one", a, input_mapping={"task": "Use {{vars.summary}}"}),
                step("two", b, output_mapping={"summary": "output.text"}),
            ],
            None,
            "steps.0.input_mapping.task",
            "earlier",
        ),
        (
            lambda a, b: [step("one", a, input_mapping={"x": "steps.two.output"}), step("two", b)],
            None,
            "steps.0.input_mapping.x",
            "not run before",
        ),
        (
            lambda a, b: [step("one", a, condition="steps.one.status == 'completed'")],
            None,
            "steps.0.condition",
            "not run before",
        ),
        (
            lambda a, b: [step("one", a), step("two", b, input_mapping={"x": "steps.one.answer"})],
            None,
            "steps.1.input_mapping.x",
            "result has",
        ),
        (lambda a, b: [step("one", a, output_mapping={"n": "text"})], None, "steps.0.output_mapping.n", "result"),
        # Conditions that do not parse, wrong shapes, unknown keys.
        (lambda a, b: [step("one", a, condition="input.x >> 3")], None, "steps.0.condition", "character"),
        (lambda a, b: [step("One", a)], None, "steps.0.id", "lowercase"),
        (lambda a, b: [step("one", a), step("one", b)], None, "steps.1.id", "Duplicate"),
        (lambda a, b: [step("one", a, retries=3)], None, "steps.0.retries", "Unknown"),
        (lambda a, b: [step("one", a, on_error="retry")], None, "steps.0.on_error", "One of"),
        (lambda a, b: [step("one", a, on_error="fallback")], None, "steps.0.fallback_step", "name the step"),
        (lambda a, b: [step("one", a)], {"strategy": "fallback"}, "error_handling.fallback_step", "Name a step"),
        (lambda a, b: [step("one", a, timeout_seconds=0)], None, "steps.0.timeout_seconds", "from 1"),
        (lambda a, b: [], None, "steps", "1 to 50"),
    ],
)
def test_broken_chains_are_refused_and_nothing_is_saved(alice, two, client_for, steps, handling, where, fragment):
    body = {"name": "Broken", "steps": steps(*two)}
    if handling:
        body["error_handling"] = handling
    error = assert_error(_post(client_for(alice), body), 400, "InvalidInput")
    problems = error["details"]["validation_errors"]
    assert where in problems, problems
    assert any(fragment in p for p in problems[where]), problems[where]
    assert not AgentChain.objects.exists()


def test_agents_must_exist_here_and_be_runnable(org, alice, owner_actor, two, other_active_agent_factory, client_for):
    researcher, _ = two
    draft = agent_create(actor=owner_actor, data={"name": "Draft", "system_prompt": "x"})
    archived = agent_create(actor=owner_actor, data={"name": "Old", "system_prompt": "x"})
    from agents.services import agent_publish

    agent_publish(actor=owner_actor, agent=archived)
    agent_archive(actor=owner_actor, agent=archived)
    theirs = other_active_agent_factory()
    cases = [
        (draft.pk, "cannot run"),
        (archived.pk, "cannot run"),
        (theirs.pk, "No agent"),
        ("00000000-0000-0000-0000-000000000000", "No agent"),
        ("researcher", "UUID"),
    ]
    for agent_id, fragment in cases:
        body = {"name": "Chain", "steps": [{"id": "one", "agent_id": str(agent_id)}]}
        error = assert_error(_post(client_for(alice), body), 400, "InvalidInput")
        assert any(fragment in p for p in error["details"]["validation_errors"]["steps.0.agent_id"])
    assert not AgentChain.objects.exists()
    assert _post(client_for(alice), {"name": "Fine", "steps": [step("one", researcher)]}).status_code == 201


def test_an_invalid_change_leaves_the_chain_as_it_was(alice, two, client_for):
    researcher, writer = two
    api = client_for(alice)
    chain = _post(api, {"name": "Pair", "steps": [step("one", researcher, output_mapping={"a": "output.text"}),
                                                  step("two", writer, input_mapping={"x": "vars.a"})]}).json()  # fmt: skip
    url = f"/api/v1/chains/{chain['id']}/"
    broken = [step("one", researcher), step("two", writer, input_mapping={"x": "vars.a"})]
    assert_error(api.patch(url, {"steps": broken}, format="json"), 400, "InvalidInput")
    assert AgentChain.objects.get().steps == chain["steps"]
    renamed = api.patch(url, {"name": "Pair 2", "retry_policy": {"max_retries": 1}}, format="json")
    assert renamed.status_code == 200 and renamed.json()["retry_policy"]["max_retries"] == 1
    dup = _post(api, {"name": "pair 2", "steps": [step("one", researcher)]})
    assert "name" in assert_error(dup, 400, "InvalidInput")["details"]["validation_errors"]


def test_tenancy_and_roles(org, alice, vic, mia, oscar, two, client_for):
    researcher, _ = two
    chain = _post(client_for(alice), {"name": "Mine", "steps": [step("one", researcher)]}).json()
    url = f"/api/v1/chains/{chain['id']}/"
    for method in ("get", "patch", "delete"):
        assert_error(getattr(client_for(oscar), method)(url), 404, "NotFound")
    assert_error(client_for(oscar).post(url + "execute/", {}, format="json"), 404, "NotFound")
    assert client_for(oscar).get("/api/v1/chains/").json()["total"] == 0
    assert client_for(vic).get(url).status_code == 200
    assert_error(
        _post(client_for(vic), {"name": "V", "steps": [step("one", researcher)]}), 403, "InsufficientPermissions"
    )
    assert_error(client_for(vic).post(url + "execute/", {}, format="json"), 403, "InsufficientPermissions")
    assert client_for(mia).post(url + "execute/", {}, format="json").status_code == 202
    assert client_for(alice).delete(url).status_code == 409  # a run is in flight


@pytest.fixture
def other_active_agent_factory(other_org, oscar):
    from accounts.access import Actor
    from accounts.models import Membership
    from agents.services import agent_activate, agent_publish

    actor = Actor(organization=other_org, user=oscar, membership=Membership.objects.get(user=oscar))

    def make():
        agent = agent_create(actor=actor, data={"name": "Theirs", "system_prompt": "x"})
        agent_publish(actor=actor, agent=agent)
        agent_activate(actor=actor, agent=agent)
        return agent

    return make
