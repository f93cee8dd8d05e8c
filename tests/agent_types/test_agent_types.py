"""The agent types change behaviour (issue #20): ``type_config`` is versioned configuration,
validated on create, update, validate and publish; an orchestrator delegates only to its
managed agents and is told who they are; an analyst answers in its report's schema; a
guardian's monitoring rules alert (once per window), emit an event and start its run;
assistants and specialists get the reference's defaults."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, AgentVersion
from agents.services import (
    agent_activate,
    agent_create,
    agent_deactivate,
    agent_delete,
    agent_publish,
    agent_template_sync,
    agent_update,
)
from agents.services.chains import chain_create
from agents.types import TYPE_DEFAULTS
from bench.fakes.script import text, tool_call
from billing.models import Alert
from config.api.errors import ApiError
from config.celery import beat_schedule
from config.json_schema import schema_errors
from executions.event_catalogue import EVENT_CATALOGUE
from executions.guardian import guardians_scan, measure
from executions.models import Execution, ExecutionLog, ExecutionStep, PlatformEvent
from executions.runtime.loop import run_execution
from executions.services import execution_start
from executions.workflows import workflow_chain_start
from tests.conftest import assert_error
from tests.tools.fixtures import *  # noqa: F403 (synced_tools)
from tools.models import AgentCapabilityGrant, Tool, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)


def _body(**fields):
    return {"name": "Typed", "system_prompt": "You are a test agent.", **fields}


def _errors(response) -> dict:
    return assert_error(response, 400, "InvalidAgentConfig")["details"]["validation_errors"]


# --- versioned configuration with validation ---------------------------------------------------


def test_orchestrator_type_config_is_validated_and_echoed(org, alice, oscar, client_for, make_agent):
    worker = make_agent(name="Worker", description="Answers billing questions.")
    foreign = agent_create(actor=None, organization=oscar.memberships.first().organization, data=_body(name="Theirs"))
    api = client_for(alice)
    rule = {"condition": "billing question", "agent": str(worker.pk), "priority": "high"}
    created = api.post(
        "/api/v1/agents/",
        _body(agent_type="orchestrator", type_config={"managed_agents": [str(worker.pk)], "delegation_rules": [rule]}),
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["type_config"] == {"managed_agents": [str(worker.pk)], "delegation_rules": [rule]}
    orchestrator = Agent.objects.get(pk=created.json()["id"])

    before = Agent.objects.count()
    bad = api.post(
        "/api/v1/agents/",
        _body(
            name="Bad",
            agent_type="orchestrator",
            type_config={
                "managed_agents": [str(foreign.pk), "nope"],
                "delegation_rules": [{"condition": "", "agent": str(worker.pk), "priority": "urgent", "x": 1}],
            },
        ),
        format="json",
    )
    errors = _errors(bad)
    assert "No agent" in errors["type_config.managed_agents.0"][0]  # another organization's agent
    assert "not an agent id" in errors["type_config.managed_agents.1"][0]
    assert "managed_agents" in errors["type_config.delegation_rules.0.agent"][0]
    assert {"type_config.delegation_rules.0.condition", "type_config.delegation_rules.0.priority"} <= set(errors)
    assert "type_config.delegation_rules.0.x" in errors
    assert Agent.objects.count() == before  # nothing half-written

    # Not itself; and validate answers what update would.
    itself = api.patch(
        f"/api/v1/agents/{orchestrator.pk}/",
        {"type_config": {"managed_agents": [str(orchestrator.pk)]}},
        format="json",
    )
    assert "itself" in _errors(itself)["type_config.managed_agents.0"][0]
    validated = api.post(
        "/api/v1/agents/validate/",
        _body(name="Other", agent_type="orchestrator", type_config={"managed_agents": [str(foreign.pk)]}),
        format="json",
    )
    assert "type_config.managed_agents.0" in _errors(validated)


def test_fields_of_another_type_are_refused(org, alice, client_for):
    api = client_for(alice)
    errors = _errors(
        api.post(
            "/api/v1/agents/",
            _body(agent_type="analyst", type_config={"managed_agents": [], "colour": "red"}),
            format="json",
        )
    )
    assert errors["type_config.managed_agents"] == [
        "Only orchestrator agents have managed_agents; this agent is analyst."
    ]
    assert "Unknown setting" in errors["type_config.colour"][0]
    # Changing the type without its settings is refused too, rather than leaving them unread.
    guardian = api.post(
        "/api/v1/agents/",
        _body(
            agent_type="guardian",
            type_config={"monitoring_rules": [{"metric": "cost", "threshold": 5, "window": "1h"}]},
        ),
        format="json",
    )
    assert guardian.status_code == 201, guardian.content
    changed = api.patch(f"/api/v1/agents/{guardian.json()['id']}/", {"agent_type": "assistant"}, format="json")
    assert "Only guardian agents" in _errors(changed)["type_config.monitoring_rules"][0]
    cleared = api.patch(
        f"/api/v1/agents/{guardian.json()['id']}/", {"agent_type": "assistant", "type_config": {}}, format="json"
    )
    assert cleared.status_code == 200 and cleared.json()["type_config"] == {}


def test_guardian_and_analyst_shapes_are_checked(org, alice, client_for):
    api = client_for(alice)
    errors = _errors(
        api.post(
            "/api/v1/agents/",
            _body(
                agent_type="guardian",
                type_config={
                    "monitoring_rules": [
                        {"metric": "mood", "threshold": 1, "window": "1h"},
                        {"metric": "failure_rate", "threshold": 2, "window": "90s", "action": "page", "severity": "x"},
                        {"metric": "cost", "threshold": -1, "window": "30d", "min_runs": 0},
                    ]
                },
            ),
            format="json",
        )
    )
    assert "failure_rate" in errors["type_config.monitoring_rules.0.metric"][0]
    assert "fraction" in errors["type_config.monitoring_rules.1.threshold"][0]
    assert {
        "type_config.monitoring_rules.1.window",
        "type_config.monitoring_rules.1.action",
        "type_config.monitoring_rules.1.severity",
        "type_config.monitoring_rules.2.threshold",
        "type_config.monitoring_rules.2.window",
        "type_config.monitoring_rules.2.min_runs",
    } <= set(errors)

    errors = _errors(
        api.post(
            "/api/v1/agents/",
            _body(
                agent_type="analyst",
                output_schema={"type": "object"},
                type_config={
                    "report_templates": [
                        {"name": "Weekly Report", "sections": ["summary"]},
                        {"name": "bare"},
                        {"name": "bad_schema", "output_schema": {"type": "nonsense"}},
                    ],
                    "default_report": "monthly",
                },
            ),
            format="json",
        )
    )
    assert {
        "type_config.report_templates.0.name",
        "type_config.report_templates.1",
        "type_config.report_templates.2.output_schema",
        "type_config.default_report",
        "output_schema",
    } <= set(errors)


def test_type_config_is_versioned_and_checked_again_on_publish(org, alice, owner_actor, make_agent):
    worker = make_agent(name="Worker")
    orchestrator = agent_create(
        actor=owner_actor,
        data=_body(agent_type="orchestrator", type_config={"managed_agents": [str(worker.pk)]}),
    )
    version = agent_publish(actor=owner_actor, agent=orchestrator)
    assert version.config["type_config"] == {"managed_agents": [str(worker.pk)], "delegation_rules": []}

    other = make_agent(name="Other")
    agent_update(actor=owner_actor, agent=orchestrator, data={"type_config": {"managed_agents": [str(other.pk)]}})
    orchestrator.refresh_from_db()
    # The running version keeps its team until the next publish.
    assert orchestrator.current_version.config["type_config"]["managed_agents"] == [str(worker.pk)]
    # A managed agent deleted since the draft was saved: publish refuses with the same error.
    agent_delete(actor=owner_actor, agent=other)
    with pytest.raises(Exception) as refused:
        agent_publish(actor=owner_actor, agent=orchestrator)
    assert refused.value.code == "InvalidAgentConfig"
    assert "type_config.managed_agents.0" in refused.value.details["validation_errors"]
    assert AgentVersion.objects.filter(agent=orchestrator).count() == 1


def test_templates_carry_their_type_config(alice, client_for):
    agent_template_sync()  # a transactional test's database was flushed of the seeded rows
    api = client_for(alice)
    for key, expected in (
        ("business-intelligence-analyst", "report_templates"),
        ("security-guardian", "monitoring_rules"),
        ("customer-success-orchestrator", "managed_agents"),
    ):
        created = api.post("/api/v1/agents/from-template/", {"template": key}, format="json")
        assert created.status_code == 201, created.content
        assert expected in created.json()["type_config"], key
        assert not {"report_templates", "monitoring_rules", "managed_agents"} & set(created.json()["metadata"])


def test_assistant_and_specialist_get_the_reference_defaults(org, alice, client_for):
    api = client_for(alice)
    assistant = api.post("/api/v1/agents/", _body(agent_type="assistant"), format="json").json()
    assert assistant["constraints"] == TYPE_DEFAULTS["assistant"]["constraints"]
    assert assistant["allowed_tools"] == TYPE_DEFAULTS["assistant"]["allowed_tools"]
    specialist = api.post(
        "/api/v1/agents/", _body(name="Spec", agent_type="specialist", domain="sales"), format="json"
    ).json()
    assert specialist["allowed_tools"] == TYPE_DEFAULTS["specialist"]["allowed_tools"]
    # What the caller gives wins ("tools" counts as allowed_tools).
    given = api.post(
        "/api/v1/agents/",
        _body(name="Given", agent_type="assistant", constraints=["Be brief"], tools=["web_search"]),
        format="json",
    ).json()
    assert given["constraints"] == ["Be brief"] and given["allowed_tools"] == ["web_search"]
    # Without a type named, nothing is assumed.
    plain = api.post("/api/v1/agents/", _body(name="Plain"), format="json").json()
    assert plain["constraints"] == [] and plain["allowed_tools"] == []


def test_a_copy_into_another_organization_loses_the_source_agents(org, alice, oscar, client_for):
    theirs = oscar.memberships.first().organization
    helper = agent_create(actor=None, organization=theirs, data=_body(name="Their Helper"))
    public = agent_create(
        actor=None,
        organization=theirs,
        data=_body(
            name="Their Boss",
            visibility="public",
            agent_type="orchestrator",
            allowed_tools=["trigger_workflow"],
            type_config={"managed_agents": [str(helper.pk)]},
        ),
    )
    agent_publish(actor=None, agent=public, by_user=oscar)
    copied = client_for(alice).post(f"/api/v1/marketplace/{public.pk}/copy/", {}, format="json")
    assert copied.status_code == 201, copied.content
    body = copied.json()
    assert body["type_config"] == {"managed_agents": [], "delegation_rules": []}
    assert body["metadata"]["not_copied"] == ["type_config.managed_agents: the source organization's agents"]
    assert any("may delegate to no agent" in w for w in body["warnings"]), body["warnings"]


# --- orchestrator: delegation only to its managed agents ----------------------------------------


def test_orchestrator_delegates_only_to_its_managed_agents(
    org, owner_actor, make_agent, providers_at_fake, synced_tools
):
    managed = make_agent(name="Billing Helper", description="Answers billing questions.", domain="billing")
    outsider = make_agent(name="Outsider")
    orchestrator = make_agent(
        name="Boss",
        agent_type="orchestrator",
        allowed_tools=["trigger_workflow"],
        type_config={
            "managed_agents": [str(managed.pk)],
            "delegation_rules": [{"condition": "an invoice is disputed", "agent": str(managed.pk)}],
        },
    )
    AgentCapabilityGrant.objects.create(organization=org, agent=orchestrator, capabilities=["trigger_workflows"])
    # Nothing runs the child here: the call does not wait long for its result.
    Tool.objects.filter(name="trigger_workflow").update(timeout_seconds=3)
    providers_at_fake.script(
        tool_call("trigger_workflow", {"workflow_id": str(outsider.pk), "input_data": {"task": "Do it"}}),
        tool_call("trigger_workflow", {"workflow_id": f"agent:{managed.pk}", "input_data": {"task": "Invoice 7"}}),
        text("Delegated."),
    )
    execution, _ = execution_start(agent=orchestrator, organization=org, task="Handle the dispute")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error

    # The prompt lists whom it may delegate to, what each does, and its rules.
    prompt = providers_at_fake.chat_requests[0].body["messages"][0]["content"]
    assert "## Delegation" in prompt and f"Billing Helper (workflow_id: {managed.pk})" in prompt
    assert "Answers billing questions." in prompt and "domain billing" in prompt
    assert "When an invoice is disputed: delegate to Billing Helper" in prompt and "Outsider" not in prompt

    calls = list(ToolCall.objects.filter(execution=execution).order_by("step_number").values_list("status", flat=True))
    assert calls == ["denied", "completed"]
    tool_messages = [m for m in providers_at_fake.chat_requests[1].body["messages"] if m["role"] == "tool"]
    assert "Delegation refused" in tool_messages[0]["content"] and str(outsider.pk) in tool_messages[0]["content"]
    refused_log = ExecutionLog.objects.filter(execution=execution, level="warn", message__contains="refused")
    assert refused_log.filter(message__contains="Delegation refused").exists()
    children = Execution.objects.filter(parent=execution)
    assert [c.agent_id for c in children] == [managed.pk]  # the outsider never ran
    assert not Execution.objects.filter(agent=outsider).exists()


def test_an_orchestrator_cannot_start_a_chain_of_unmanaged_agents(org, owner_actor, make_agent, providers_at_fake):

    managed, outsider = make_agent(name="Managed"), make_agent(name="Outsider")
    orchestrator = make_agent(name="Boss", agent_type="orchestrator", type_config={"managed_agents": [str(managed.pk)]})
    ok_chain = chain_create(actor=owner_actor, data={"name": "Ok", "steps": [{"id": "a", "agent_id": str(managed.pk)}]})
    bad_chain = chain_create(
        actor=owner_actor,
        data={
            "name": "Bad",
            "steps": [{"id": "a", "agent_id": str(managed.pk)}, {"id": "b", "agent_id": str(outsider.pk)}],
        },
    )
    parent, _ = execution_start(agent=orchestrator, organization=org, task="Coordinate")
    with pytest.raises(ApiError) as refused:
        workflow_chain_start(
            organization_id=org.pk,
            chain_id=str(bad_chain.pk),
            input_data={},
            parent_execution=parent,
            idempotency_key="k1",
        )
    assert refused.value.details["reason"] == "delegation_refused" and str(outsider.pk) in refused.value.message
    started = workflow_chain_start(
        organization_id=org.pk, chain_id=str(ok_chain.pk), input_data={}, parent_execution=parent, idempotency_key="k2"
    )
    assert started["started"] is True


# --- analyst: report templates in the prompt and as the output schema ---------------------------


def test_analyst_answers_in_its_report_schema(org, make_agent, providers_at_fake):
    analyst = make_agent(
        name="BI",
        agent_type="analyst",
        type_config={
            "report_templates": [
                {"name": "weekly", "description": "The week's numbers.", "sections": ["summary", "actions"]},
                {"name": "anomalies", "output_schema": {"type": "object", "required": ["anomalies"]}},
            ]
        },
    )
    providers_at_fake.script(text("Sales went up."), text('{"summary": "Sales went up.", "actions": "Hire."}'))
    execution, _ = execution_start(agent=analyst, organization=org, task="Report on this week")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    assert execution.output == {"summary": "Sales went up.", "actions": "Hire."}
    assert execution.config["report"]["name"] == "weekly"  # the default: the first template
    reflect = ExecutionStep.objects.get(execution=execution, step_type="reflect")
    assert "does not match" in reflect.input_text  # the free-text answer was sent back once
    prompt = providers_at_fake.chat_requests[0].body["messages"][0]["content"]
    assert "## Report Templates" in prompt and "- anomalies" in prompt and "This run's report: weekly." in prompt
    assert '"required": ["summary", "actions"]' in prompt  # the Response Format section

    chosen, _ = execution_start(
        agent=analyst, organization=org, task="Anything odd?", context={"report_template": "anomalies"}
    )
    assert chosen.config["output_schema"] == {"type": "object", "required": ["anomalies"]}

    with pytest.raises(ApiError) as unknown:
        execution_start(agent=analyst, organization=org, task="x", context={"report_template": "yearly"})
    assert (
        unknown.value.code == "InvalidInput" and "context.report_template" in unknown.value.details["validation_errors"]
    )


def test_an_unknown_report_is_a_400_at_the_execute_endpoint(org, alice, client_for, make_agent):
    analyst = make_agent(
        name="BI", agent_type="analyst", type_config={"report_templates": [{"name": "w", "sections": ["s"]}]}
    )
    before = Execution.objects.count()
    response = client_for(alice).post(
        f"/api/v1/agents/{analyst.pk}/execute/", {"task": "Go", "context": {"report_template": "zz"}}, format="json"
    )
    assert "context.report_template" in assert_error(response, 400, "InvalidInput")["details"]["validation_errors"]
    assert Execution.objects.count() == before


# --- guardian: monitoring rules on beat ---------------------------------------------------------


def _ended(agent, status, *, cost="0", duration_ms=1000, ago=timedelta(minutes=5)):
    when = timezone.now() - ago
    return Execution.objects.create(
        organization=agent.organization,
        agent=agent,
        agent_version=agent.current_version,
        input={"task": "t"},
        status=status,
        started_at=when,
        completed_at=when,
        created_at=when,
        duration_ms=duration_ms,
        cost=cost,
    )


def _guardian(make_agent, owner_actor, watched, **rule):

    guardian = make_agent(
        name="Watchman",
        agent_type="guardian",
        type_config={"watched_agents": [str(a.pk) for a in watched], "monitoring_rules": [rule]},
    )
    agent_activate(actor=owner_actor, agent=guardian)
    guardian.refresh_from_db()
    return guardian


def test_guardian_breach_alerts_once_per_window_emits_the_event_and_runs(org, owner_actor, make_agent):
    watched, unwatched = make_agent(name="Watched"), make_agent(name="Unwatched")
    guardian = _guardian(
        make_agent, owner_actor, [watched], name="failing", metric="failure_rate", threshold=0.5, window="1h",
        min_runs=3, action="run", severity="high",
    )  # fmt: skip
    _ended(watched, "completed")
    _ended(watched, "failed")
    for _ in range(5):
        _ended(unwatched, "failed")  # not watched: does not count
    assert guardians_scan() == 0  # 1 of 2 failed, and fewer than min_runs
    _ended(watched, "timed_out")
    assert guardians_scan() == 1  # 2 of 3

    alert = Alert.objects.get(organization=org, kind="guardian_breach")
    assert "failure_rate" in alert.message and alert.details["rule"] == "failing"
    event = PlatformEvent.objects.get(organization=org, event_type="ai.guardian.breach")
    assert not schema_errors(EVENT_CATALOGUE["ai.guardian.breach"]["payload_schema"], event.payload, limit=3)
    assert event.payload["value"] == pytest.approx(2 / 3) and event.payload["sample_size"] == 3
    assert event.payload["watched_agents"] == [str(watched.pk)] and event.payload["alert_id"] == str(alert.pk)
    run = Execution.objects.get(agent=guardian)
    assert event.payload["execution_id"] == str(run.pk) and alert.details["execution_id"] == str(run.pk)
    assert run.input["context"]["breach"]["rule"] == "failing" and run.trigger_type == "event"

    # The same window again: nothing new; the next window alerts again.
    _ended(watched, "failed")
    assert guardians_scan() == 0
    assert Alert.objects.filter(kind="guardian_breach").count() == 1
    assert guardians_scan(now=timezone.now() + timedelta(minutes=61)) == 0  # the runs left the window
    _ended(watched, "failed", ago=timedelta(minutes=-60))
    _ended(watched, "failed", ago=timedelta(minutes=-60))
    _ended(watched, "failed", ago=timedelta(minutes=-60))
    assert guardians_scan(now=timezone.now() + timedelta(minutes=61)) == 1
    assert Alert.objects.filter(kind="guardian_breach").count() == 2


def test_guardian_metrics_and_who_is_watched(org, owner_actor, make_agent):
    a, b = make_agent(name="A"), make_agent(name="B")
    for ms in (100, 200, 300, 400, 1000):
        _ended(a, "completed", duration_ms=ms, cost="0.25")
    _ended(b, "waiting_approval")
    since = timezone.now() - timedelta(hours=1)
    ids = [a.pk, b.pk]
    assert measure(metric="latency_p50", agent_ids=ids, organization_id=org.pk, since=since) == (300.0, 5)
    assert measure(metric="latency_p95", agent_ids=ids, organization_id=org.pk, since=since)[0] == pytest.approx(880.0)
    assert measure(metric="cost", agent_ids=ids, organization_id=org.pk, since=since) == (1.25, 6)
    assert measure(metric="run_count", agent_ids=ids, organization_id=org.pk, since=since) == (6.0, 6)
    assert measure(metric="approval_backlog", agent_ids=ids, organization_id=org.pk, since=since) == (1.0, 1)

    # watched_agents empty: every other agent of the organization; action alert: no run.
    guardian = _guardian(make_agent, owner_actor, [], metric="cost", threshold=1, window="1h")
    assert guardians_scan() == 1
    event = PlatformEvent.objects.get(event_type="ai.guardian.breach")
    assert set(event.payload["watched_agents"]) == {str(a.pk), str(b.pk)} and event.payload["execution_id"] is None
    assert not Execution.objects.filter(agent=guardian).exists()


def test_an_inactive_guardian_watches_nothing_and_the_scan_is_on_beat(org, owner_actor, make_agent):

    watched = make_agent(name="Watched")
    guardian = _guardian(make_agent, owner_actor, [watched], metric="run_count", threshold=0, window="5m")
    agent_deactivate(actor=owner_actor, agent=guardian)
    _ended(watched, "completed", ago=timedelta(minutes=1))
    assert guardians_scan() == 0 and not Alert.objects.exists()
    assert beat_schedule()["executions.guardians-scan"]["task"] == "executions.guardians_scan"
