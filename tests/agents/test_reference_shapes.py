"""Shapes the reference documents define: validate without saving (agents and chains), the
event catalogue, ``tools`` as an alias of ``allowed_tools``, ``sort_by=execution_count``."""

from __future__ import annotations

import pytest

from accounts.models import ActivityLog
from agents.models import Agent, AgentChain
from agents.services import agent_create
from agents.triggers.patterns import EVENT_TYPES
from bench.fakes.script import error, text
from billing.models import Plan
from config.json_schema import schema_errors
from executions.event_catalogue import EVENT_CATALOGUE
from executions.models import PlatformEvent
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tests.chains.conftest import step
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)

AGENT = {"name": "Checker", "system_prompt": "You check things."}


def nothing_written(org) -> tuple[int, int, int, int]:
    return (
        Agent.objects.filter(organization=org).count(),
        AgentChain.objects.filter(organization=org).count(),
        ActivityLog.objects.filter(organization=org).count(),
        PlatformEvent.objects.filter(organization=org).count(),
    )


def test_agent_validate_answers_what_create_would_and_writes_nothing(org, alice, client_for):
    api = client_for(alice)
    before = nothing_written(org)
    ok = api.post("/api/v1/agents/validate/", {**AGENT, "tools": ["web_*"]}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["valid"] is True and ok.json()["slug"] == "checker"
    assert nothing_written(org) == before

    for body in (
        {
            **AGENT,
            "model_config": {"provider": "openai", "model": "claude-sonnet-4-20250514"},
        },  # another provider's model
        {**AGENT, "agent_type": "wizard"},
        {"system_prompt": "no name"},
    ):
        validated = api.post("/api/v1/agents/validate/", body, format="json")
        created = api.post("/api/v1/agents/", body, format="json")
        assert validated.status_code == created.status_code == 400, (validated.content, created.content)
        assert validated.json()["error"]["details"] == created.json()["error"]["details"]
        assert validated.json()["error"]["code"] == created.json()["error"]["code"]
    assert nothing_written(org) == before

    # A name taken and the plan's max_agents are create's answers too.
    assert api.post("/api/v1/agents/", AGENT, format="json").status_code == 201
    assert_error(api.post("/api/v1/agents/validate/", AGENT, format="json"), 409, "DuplicateAgentName")
    org.plan = Plan.objects.create(slug="tiny", name="Tiny", included_runs=1, included_tokens=1, max_agents=1)
    org.save(update_fields=["plan"])
    limited = api.post("/api/v1/agents/validate/", {**AGENT, "name": "Second"}, format="json")
    error = assert_error(limited, 403, "OrganizationLimitExceeded")
    assert error["details"]["resource_usage"] == {"max_agents": 1, "agents": 1}
    assert_error(
        api.post("/api/v1/agents/", {**AGENT, "name": "Second"}, format="json"), 403, "OrganizationLimitExceeded"
    )
    assert Agent.objects.filter(organization=org).count() == 1


def test_a_viewer_may_not_validate(org, vic, client_for):
    assert_error(client_for(vic).post("/api/v1/agents/validate/", AGENT, format="json"), 403, "InsufficientPermissions")


def test_chain_validate_answers_what_create_would_and_writes_nothing(org, alice, client_for, runnable, other_org):
    api = client_for(alice)
    researcher = runnable("Researcher")
    body = {"name": "Research", "steps": [step("research", researcher)]}
    before = nothing_written(org)
    ok = api.post("/api/v1/chains/validate/", body, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["valid"] is True and [s["id"] for s in ok.json()["steps"]] == ["research"]
    assert nothing_written(org) == before

    foreign = agent_create(actor=None, organization=other_org, data={"name": "Theirs", "system_prompt": "x"})
    for bad in (
        {"name": "Bad", "steps": [step("one", foreign)]},
        {"name": "Loop", "steps": [step("one", researcher, on_error="fallback", fallback_step="one")]},
        {"name": "Unknown", "steps": [], "colour": "red"},
    ):
        validated = api.post("/api/v1/chains/validate/", bad, format="json")
        created = api.post("/api/v1/chains/", bad, format="json")
        assert validated.status_code == created.status_code == 400, (validated.content, created.content)
        assert validated.json()["error"]["details"] == created.json()["error"]["details"]
    assert nothing_written(org) == before


def test_tools_is_an_alias_of_allowed_tools(alice, client_for):
    api = client_for(alice)
    created = api.post("/api/v1/agents/", {**AGENT, "tools": ["web_search", "crm_*"]}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["allowed_tools"] == ["web_search", "crm_*"]
    both = api.post("/api/v1/agents/", {**AGENT, "name": "Two", "tools": ["a"], "allowed_tools": ["b"]}, format="json")
    error = assert_error(both, 400, "InvalidInput")
    assert "tools" in error["details"]["validation_errors"]


def test_sort_by_execution_count(org, alice, client_for):
    api = client_for(alice)
    ids = [api.post("/api/v1/agents/", {**AGENT, "name": f"A{n}"}, format="json").json()["id"] for n in range(3)]
    for runs, agent_id in zip((5, 1, 9), ids, strict=True):
        Agent.objects.filter(pk=agent_id).update(total_runs=runs)
    listed = api.get("/api/v1/agents/?sort_by=execution_count&sort_order=desc").json()["results"]
    assert [a["id"] for a in listed] == [ids[2], ids[0], ids[1]]
    assert_error(api.get("/api/v1/agents/?sort_by=colour"), 400, "InvalidInput")


def test_the_event_catalogue_describes_every_event_and_its_payloads(org, vic, client_for, runnable, providers_at_fake):
    listed = client_for(vic).get("/api/v1/event-types/")
    assert listed.status_code == 200
    body = listed.json()
    assert {e["id"] for e in body["results"]} == set(EVENT_TYPES) == set(EVENT_CATALOGUE)
    assert body["total"] == len(EVENT_TYPES)
    assert all(e["name"] and e["description"] for e in body["results"])
    assert {e["category"] for e in body["results"]} == {"AI Agents", "CRM"}
    assert all((e["category"] == "CRM") == e["id"].startswith("crm.") for e in body["results"])

    # The payloads the platform really writes match their schemas.
    agent = runnable("Catalogued")
    providers_at_fake.script(text("done"))
    execution, _ = execution_start(agent=agent, organization=org, task="x")
    run_execution(execution.pk)
    providers_at_fake.script(error(400, "no"))  # not retried
    failed, _ = execution_start(agent=agent, organization=org, task="y")
    run_execution(failed.pk)
    seen = set()
    for event in PlatformEvent.objects.filter(organization=org):
        problems = schema_errors(EVENT_CATALOGUE[event.event_type]["payload_schema"], event.payload, limit=3)
        assert not problems, (event.event_type, event.payload, [p.message for p in problems])
        seen.add(event.event_type)
    assert {"ai.agent.created", "ai.execution.completed", "ai.execution.failed"} <= seen
