"""The console's pages through Django's test client: an execution's trace (read-only, scoped,
what the think steps sent), the playground's run / compare / decide / re-run endpoints and
their refusals. The browser drives the same pages in test_console_browser.py."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.access import Actor
from accounts.models import Membership
from agents.services.agents import agent_create, agent_update
from agents.services.versions import agent_publish
from approvals.models import ApprovalRequest
from executions.models import Execution, ExecutionStep
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tests.approvals.helpers import pending_approvals

pytestmark = pytest.mark.django_db

FORM_CONTROL = re.compile(r"<(input|textarea|select)\b(?![^>]*type=\"hidden\")", re.IGNORECASE)


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.fixture
def org_admin(adam) -> Client:
    adam.is_staff = True
    adam.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(adam)
    return client


def _actor(organization, user) -> Actor:
    return Actor(
        organization=organization, user=user, membership=Membership.objects.get(user=user, organization=organization)
    )


def _sandbox_agent(actor, name="Helper", prompt="Be brief."):
    agent = agent_create(
        actor=actor,
        data={"name": name, "system_prompt": prompt, "model_config": {"provider": "sandbox", "model": "sandbox-echo"}},
    )
    agent_publish(actor=actor, agent=agent)
    agent.refresh_from_db()
    return agent


def _content(response) -> str:
    html = response.content.decode()
    return html[html.index('id="content"') :]


def test_the_trace_is_read_only_and_shows_what_the_model_was_sent(org, alice, root):
    key = "sk-live_abcdefghijklmnopqrstuv"
    agent = _sandbox_agent(_actor(org, alice), prompt=f"Never say the word {key}.")
    execution, _ = execution_start(agent=agent, organization=org, task="Say hello to the console")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed"

    observe, think = list(ExecutionStep.objects.filter(execution=execution).order_by("step_number"))[:2]
    assert observe.completed_at >= observe.started_at
    assert think.duration_ms == int((think.completed_at - think.started_at).total_seconds() * 1000)
    sent = think.request["messages"]
    assert [m["role"] for m in sent[:2]] == ["system", "user"] and sent[1]["content"] == "Say hello to the console"
    assert key not in str(think.request) and "***" in sent[0]["content"]  # redacted before it is stored

    url = f"/admin/executions/execution/{execution.pk}/change/"
    response = root.get(url)
    assert response.status_code == 200
    page = _content(response)
    assert f"<h1>{agent.name} · " in page
    assert "Say hello to the console" in page and "Messages sent (2)" in page and "Raw answer" in page
    assert key not in page
    # Nothing to edit, nothing to save: the only control is the Re-run button's form.
    assert FORM_CONTROL.findall(page.replace('<input type="hidden"', "")) == []
    assert 'name="_save"' not in page
    assert root.post(url, {"status": "failed"}).status_code == 403
    execution.refresh_from_db()
    assert execution.status == "completed"


def test_an_organization_admin_sees_their_runs_only(org, other_org, alice, oscar, org_admin):
    mine = _sandbox_agent(_actor(org, alice), name="Mine")
    theirs = _sandbox_agent(_actor(other_org, oscar), name="Theirs")
    my_run, _ = execution_start(agent=mine, organization=org, task="a")
    their_run, _ = execution_start(agent=theirs, organization=other_org, task="b")
    assert org_admin.get(f"/admin/executions/execution/{my_run.pk}/change/").status_code == 200
    assert org_admin.get(f"/admin/executions/execution/{their_run.pk}/change/").status_code == 404
    assert org_admin.get(f"/admin/agents/agent/{theirs.pk}/playground/").status_code == 404
    assert org_admin.post(f"/admin/console/agents/{theirs.pk}/run/", {"task": "x"}).status_code == 404
    assert org_admin.get(f"/admin/console/executions/{their_run.pk}/stream/").status_code == 404
    assert org_admin.post(f"/admin/console/executions/{their_run.pk}/rerun/").status_code == 404
    assert Execution.objects.filter(agent=theirs).count() == 1


def test_playground_runs_and_compares_versions_and_refuses_bad_input(org, alice, org_admin):
    actor = _actor(org, alice)
    agent = _sandbox_agent(actor)
    first = agent.current_version
    agent_update(actor=actor, agent=agent, data={"system_prompt": "Be very brief."})
    agent_publish(actor=actor, agent=agent)
    agent.refresh_from_db()
    second = agent.current_version
    assert first.pk != second.pk

    page = org_admin.get(f"/admin/agents/agent/{agent.pk}/playground/")
    assert page.status_code == 200 and first.version in page.content.decode()
    run_url = f"/admin/console/agents/{agent.pk}/run/"

    for body, field in (
        ({"task": "  "}, "task"),
        ({"task": "x", "context": "{not json"}, "context"),
        ({"task": "x", "context": "[1]"}, "context"),
        ({"task": "x", "version": "00000000-0000-0000-0000-000000000000"}, "version"),
    ):
        refused = org_admin.post(run_url, body)
        assert refused.status_code == 400, body
        error = refused.json()["error"]
        assert error["code"] == "InvalidInput" and field in error["details"]["validation_errors"], error
    assert not Execution.objects.filter(agent=agent).exists()  # nothing half-started

    started = org_admin.post(
        run_url, {"task": "Compare us", "context": '{"customer": 7}', "version": [str(first.pk), str(second.pk)]}
    )
    assert started.status_code == 202, started.content
    runs = started.json()["runs"]
    assert [r["version"] for r in runs] == [first.version, second.version]
    for run in runs:
        execution = Execution.objects.get(pk=run["id"])
        assert execution.input == {"task": "Compare us", "context": {"customer": 7}}
        assert execution.triggered_by_user.username == "adam@" + org.slug + ".test"
        assert run["stream_url"] == f"/admin/console/executions/{execution.pk}/stream/"
    assert {Execution.objects.get(pk=r["id"]).agent_version_id for r in runs} == {first.pk, second.pk}


def test_rerun_starts_the_same_input_on_the_current_version(org, alice, org_admin):
    agent = _sandbox_agent(_actor(org, alice))
    execution, _ = execution_start(agent=agent, organization=org, task="Again", context={"n": 1})
    response = org_admin.post(f"/admin/console/executions/{execution.pk}/rerun/")
    again = Execution.objects.exclude(pk=execution.pk).get(agent=agent)
    assert response.status_code == 302 and response["Location"].endswith(f"/{again.pk}/change/")
    assert again.input == execution.input and again.agent_version_id == agent.current_version_id
    assert again.trigger_data == {"source": "console re-run", "rerun_of": str(execution.pk)}


def test_decide_inline_denies_a_held_call_and_refuses_nonsense(org, alice, other_org, oscar, org_admin):
    agent = _sandbox_agent(_actor(org, alice))
    (approval,) = pending_approvals(agent, org)
    (theirs,) = pending_approvals(_sandbox_agent(_actor(other_org, oscar), name="Theirs"), other_org)
    assert org_admin.post(f"/admin/console/approvals/{approval.pk}/maybe/").status_code == 404
    assert org_admin.post(f"/admin/console/approvals/{theirs.pk}/deny/").status_code == 404
    denied = org_admin.post(f"/admin/console/approvals/{approval.pk}/deny/", {"note": "Not today."})
    assert denied.status_code == 200 and denied.json()["status"] == "denied"
    again = org_admin.post(f"/admin/console/approvals/{approval.pk}/approve/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "Conflict"
    approval.refresh_from_db()
    assert approval.status == "denied" and approval.resolution_note == "Not today."
    assert ApprovalRequest.objects.get(pk=theirs.pk).status == "pending"
