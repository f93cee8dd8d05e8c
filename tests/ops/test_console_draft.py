"""Issue #19's last gaps, through the API and the console: a run of the agent's unpublished
draft (no version, recorded as a draft everywhere, only for who may edit the agent), and a
sandbox run that does not pass its "[sandbox]" answers off as LLM calls."""

from __future__ import annotations

import pytest

from accounts.models import Organization
from agents.models import Agent
from agents.services.agents import agent_create, agent_update
from agents.services.versions import agent_publish
from billing.models import DailyUsage, UsageRecord
from billing.usage import daily_usage_rebuild
from executions.models import Execution, ExecutionEvent
from executions.runtime.loop import run_execution
from tests.conftest import assert_error
from tests.ops.test_console import _actor, org_admin  # noqa: F401 — a fixture

pytestmark = pytest.mark.django_db

SANDBOX = {"provider": "sandbox", "model": "sandbox-echo"}


def _draft_agent(actor, name="Drafty", prompt="Answer in one line.") -> Agent:
    """An agent never published: status draft, no version."""
    return agent_create(actor=actor, data={"name": name, "system_prompt": prompt, "model_config": SANDBOX})


def _execute(client, agent, **body):
    return client.post(f"/api/v1/agents/{agent.pk}/execute/", {"task": "Say hi", **body}, format="json")


def test_the_api_runs_an_unpublished_draft_as_an_ordinary_durable_run(org, alice, client_for):
    agent = _draft_agent(_actor(org, alice))
    assert agent.current_version_id is None and agent.status == "draft"
    api = client_for(alice)

    # Without "draft" an unpublished agent still refuses, as before.
    assert_error(_execute(api, agent), 409, "Conflict")
    started = _execute(api, agent, draft=True)
    assert started.status_code == 202, started.content
    body = started.json()
    assert body["agent_version"] is None and body["draft"] is True
    assert any("unpublished draft" in w for w in body["warnings"])

    execution = Execution.objects.get(pk=body["id"])
    assert execution.agent_version_id is None and execution.is_draft
    assert execution.config["system_prompt"] == "Answer in one line."  # frozen at creation
    # Editing the draft afterwards does not change the run.
    agent_update(actor=_actor(org, alice), agent=agent, data={"system_prompt": "Changed."})
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", (execution.error, execution.error_details)
    assert execution.config["system_prompt"] == "Answer in one line."
    assert (
        execution.steps.filter(step_type="think")
        .first()
        .request["messages"][0]["content"]
        .startswith("Answer in one line.")
    )
    log = execution.logs.get(message="Run started.")
    assert log.metadata["version"] == "draft (unpublished)" and log.metadata["agent_version_id"] is None

    # Every reader of a run copes with no version: the API's detail, lists, usage.
    detail = api.get(f"/api/v1/executions/{execution.pk}/").json()
    assert detail["agent_version"] is None and detail["draft"] is True and detail["status"] == "completed"
    listed = api.get("/api/v1/executions/").json()["results"]
    assert [r["draft"] for r in listed] == [True]
    assert api.get(f"/api/v1/agents/{agent.pk}/executions/").json()["results"][0]["agent_version"] is None
    assert api.get(f"/api/v1/executions/{execution.pk}/steps/").status_code == 200
    by_agent = api.get("/api/v1/usage/?group_by=agent").json()["results"]
    assert [(r["key"], r["runs"]) for r in by_agent] == [(str(agent.pk), 1)]
    assert api.get("/api/v1/usage/quota/").json()["runs"]["used"] == 1  # quota-checked and counted


def test_only_who_may_edit_the_agent_runs_its_draft(org, alice, mia, vic, other_org, oscar, client_for):
    agent = _draft_agent(_actor(org, alice))
    agent_publish(actor=_actor(org, alice), agent=agent)
    # A member may run alice's agent, not edit it: its published version yes, its draft no.
    member = client_for(mia)
    assert _execute(member, agent).status_code == 202
    error = assert_error(_execute(member, agent, draft=True), 403, "InsufficientPermissions")
    assert "edit" in error["message"]
    assert_error(_execute(client_for(vic), agent, draft=True), 403, "InsufficientPermissions")
    assert_error(_execute(client_for(oscar), agent, draft=True), 404, "AgentNotFound")
    assert_error(_execute(member, agent, draft="yes please"), 400, "InvalidInput")
    assert Execution.objects.filter(agent=agent).count() == 1  # the member's published run only
    assert not Execution.objects.filter(agent_version__isnull=True).exists()


def test_a_draft_publishing_would_refuse_does_not_run(org, alice, client_for):
    agent = _draft_agent(_actor(org, alice))
    # Saved when the catalog allowed it; publishing validates again, and so does a draft run.
    Agent.objects.filter(pk=agent.pk).update(system_prompt="", instructions="", personality="")
    error = assert_error(_execute(client_for(alice), agent, draft=True), 400, "InvalidAgentConfig")
    assert "system_prompt" in error["details"]["validation_errors"]
    Agent.objects.filter(pk=agent.pk).update(system_prompt="ok", status="archived")
    assert_error(_execute(client_for(alice), agent, draft=True), 409, "Conflict")
    assert not Execution.objects.exists()


def test_the_playground_runs_the_draft_compares_it_and_reruns_the_current_draft(org, alice, org_admin):  # noqa: F811
    actor = _actor(org, alice)
    agent = _draft_agent(actor)
    page = org_admin.get(f"/admin/agents/agent/{agent.pk}/playground/").content.decode()
    assert 'value="draft" selected' in page and 'id="not-runnable"' not in page

    run_url = f"/admin/console/agents/{agent.pk}/run/"
    assert org_admin.post(run_url, {"task": "x"}).status_code == 409  # no version yet: the draft must be chosen
    started = org_admin.post(run_url, {"task": "Draft first", "version": "draft"})
    assert started.status_code == 202, started.content
    (run,) = started.json()["runs"]
    assert run["draft"] is True and run["version"] == "draft (unpublished)"

    version = agent_publish(actor=actor, agent=agent)
    agent_update(actor=actor, agent=agent, data={"system_prompt": "The new draft."})
    compared = org_admin.post(run_url, {"task": "Which?", "version": ["draft", str(version.pk)]})
    assert compared.status_code == 202, compared.content
    assert [r["version"] for r in compared.json()["runs"]] == ["draft (unpublished)", version.version]
    draft_run = Execution.objects.get(pk=compared.json()["runs"][0]["id"])
    assert draft_run.config["system_prompt"] == "The new draft."
    assert Execution.objects.get(pk=compared.json()["runs"][1]["id"]).agent_version_id == version.pk

    # The trace and the lists say "draft (unpublished)" where a version number would be.
    run_execution(draft_run.pk)
    trace = org_admin.get(f"/admin/executions/execution/{draft_run.pk}/change/")
    assert trace.status_code == 200
    html = trace.content.decode()
    assert "Version: draft (unpublished)" in html and "current draft" in html
    assert "draft (unpublished)" in org_admin.get("/admin/executions/execution/").content.decode()
    assert "draft (unpublished)" in org_admin.get(f"/admin/agents/agent/{agent.pk}/playground/").content.decode()

    # Re-run of a draft run: the same input on the draft as it is now.
    agent_update(actor=actor, agent=agent, data={"system_prompt": "Newer still."})
    response = org_admin.post(f"/admin/console/executions/{draft_run.pk}/rerun/")
    again = Execution.objects.order_by("-created_at").first()
    assert response.status_code == 302 and response["Location"].endswith(f"/{again.pk}/change/")
    assert again.is_draft and again.config["system_prompt"] == "Newer still." and again.input == draft_run.input


def test_an_admin_who_may_not_edit_the_agent_is_refused_its_draft_in_the_console(org, alice, adam, org_admin):  # noqa: F811
    agent = _draft_agent(_actor(org, alice))
    # adam's role without the right to edit others' agents (an organization's override).
    Organization.objects.filter(pk=org.pk).update(
        role_permissions={"admin": ["agents.view_agent", "agents.execute_agent", "executions.view_execution"]}
    )
    page = org_admin.get(f"/admin/agents/agent/{agent.pk}/playground/").content.decode()
    assert 'value="draft"' not in page and 'id="not-runnable"' in page
    refused = org_admin.post(f"/admin/console/agents/{agent.pk}/run/", {"task": "x", "version": "draft"})
    assert refused.status_code == 403
    assert not Execution.objects.exists()


def test_a_sandbox_run_counts_sandbox_answers_apart_from_llm_calls(org, alice, client_for, org_admin):  # noqa: F811
    actor = _actor(org, alice)
    agent = _draft_agent(actor)
    agent_publish(actor=actor, agent=agent)
    api = client_for(alice)
    started = _execute(api, agent)
    run_execution(started.json()["id"])
    execution = Execution.objects.get(pk=started.json()["id"])
    thinks = execution.steps.filter(step_type="think")
    assert execution.status == "completed" and thinks.count() >= 1
    assert {s.provider for s in thinks} == {"sandbox"}
    assert execution.llm_calls == 0 and execution.api_calls_count == 0
    assert execution.sandbox_calls == thinks.count()
    assert execution.tokens_total > 0 and execution.cost == 0  # estimated tokens, at no cost, labelled

    events = ExecutionEvent.objects.filter(execution=execution, event="think_completed")
    assert [e.data["sandbox"] for e in events] == [True] * thinks.count()  # the live stream says so too
    detail = api.get(f"/api/v1/executions/{execution.pk}/").json()
    assert detail["llm_calls"] == 0 and detail["sandbox_calls"] == thinks.count()
    trace = org_admin.get(f"/admin/executions/execution/{execution.pk}/change/").content.decode()
    assert f"(+ {thinks.count()} sandbox answer" in trace and "not model calls" in trace

    # Usage: the records stay (tokens, provider "sandbox"); the rollups' llm_calls leave them out.
    assert UsageRecord.objects.filter(execution_id=execution.pk, provider="sandbox").count() == thinks.count()
    (row,) = api.get("/api/v1/usage/?group_by=model").json()["results"]
    assert row["key"] == "sandbox-echo" and row["llm_calls"] == 0 and row["sandbox_calls"] == thinks.count()
    (by_user,) = api.get("/api/v1/usage/?group_by=user").json()["results"]
    assert by_user["llm_calls"] == 0 and by_user["sandbox_calls"] == thinks.count()
    before = list(DailyUsage.objects.exclude(provider="").values_list("llm_calls", "tokens_input"))
    daily_usage_rebuild(organization_id=org.pk)
    assert list(DailyUsage.objects.exclude(provider="").values_list("llm_calls", "tokens_input")) == before
    assert before[0][0] == 0
