"""POST events/: fan-out to the right agents only (patterns, conditions, switches, tenancy),
limits recorded as refused attempts, idempotency, bad input refused with nothing run."""

from __future__ import annotations

import pytest

from agents.services import agent_configuration_set, agent_create, agent_publish
from executions.models import Execution, TriggerAttempt
from tests.conftest import assert_error

EVENT = {"type": "crm.contact.created", "payload": {"email": "new@lead.test", "score": 72, "source": "web"}}


def _post(client, body, **headers):
    return client.post("/api/v1/events/", body, format="json", **headers)


def test_fan_out_reaches_exactly_the_matching_agents(
    org, alice, active_agent, make_agent, other_active_agent, client_for
):
    exact = active_agent(name="Exact", trigger_events=["crm.contact.created"])
    wildcard = active_agent(name="Wildcard", trigger_events=["crm.contact.*"])
    deep = active_agent(name="Deep", trigger_events=["crm.**"])
    conditional = active_agent(name="Hot leads", trigger_events=["crm.contact.*"],
                               trigger_conditions={"expression": "payload.score >= 70 and payload.source in ['web', 'ads']"})  # fmt: skip
    cold = active_agent(
        name="Cold leads", trigger_events=["crm.contact.*"], trigger_conditions={"expression": "payload.score < 30"}
    )
    active_agent(name="Deals", trigger_events=["crm.deal.*"])
    active_agent(name="Deeper only", trigger_events=["crm.contact.*.*"])
    make_agent(name="Inactive", trigger_events=["crm.contact.*"])  # published, never activated
    draft = agent_create(
        actor=None, organization=org, data={"name": "Draft", "system_prompt": "x", "trigger_events": ["crm.**"]}
    )
    theirs = other_active_agent(trigger_events=["crm.contact.*"])

    response = _post(client_for(alice), EVENT)
    assert response.status_code == 202, response.content
    body = response.json()
    started = {e["agent_id"] for e in body["executions"]}
    assert started == {str(a.pk) for a in (exact, wildcard, deep, conditional)}
    assert body["started"] == 4 and body["conditions_not_met"] == [str(cold.pk)] and body["refused"] == []
    runs = Execution.objects.filter(trigger_type="event")
    assert runs.count() == 4
    for run in runs:
        assert run.input["context"] == EVENT["payload"] and "crm.contact.created" in run.input["task"]
        assert run.trigger_data == {"event_type": "crm.contact.created", "event_id": body["event_id"]}
        assert run.organization_id == org.pk and run.triggered_by_user_id == alice.pk
    assert not Execution.objects.filter(agent__in=[theirs, draft]).exists()


def test_events_stay_inside_the_posting_organization(org, alice, oscar, active_agent, other_active_agent, client_for):
    ours = active_agent(trigger_events=["auth.login.*"])
    theirs = other_active_agent(trigger_events=["auth.login.*"])
    body = _post(client_for(oscar), {"type": "auth.login.failed", "payload": {"user": "x"}}).json()
    assert [e["agent_id"] for e in body["executions"]] == [str(theirs.pk)]
    assert not Execution.objects.filter(agent=ours).exists()
    body = _post(client_for(alice), {"type": "auth.login.failed", "payload": {}}).json()
    assert [e["agent_id"] for e in body["executions"]] == [str(ours.pk)]
    assert Execution.objects.filter(agent=theirs).count() == 1


def test_platform_agents_run_for_organizations_that_switched_them_on(org, other_org, alice, owner_actor, client_for):
    platform = agent_create(actor=None, organization=None, data={"name": "Login watch", "system_prompt": "Watch.",
                                                                  "trigger_events": ["auth.login.*"]})  # fmt: skip
    agent_publish(actor=None, agent=platform)
    platform.is_active = True
    platform.save(update_fields=["is_active"])
    platform.refresh_from_db()
    assert _post(client_for(alice), {"type": "auth.login.failed", "payload": {}}).json()["started"] == 0
    agent_configuration_set(
        actor=owner_actor, agent=platform, overrides={"trigger_conditions": {"payload.attempts": [3, 4]}}
    )
    assert _post(client_for(alice), {"type": "auth.login.failed", "payload": {"attempts": 1}}).json()["started"] == 0
    body = _post(client_for(alice), {"type": "auth.login.failed", "payload": {"attempts": 3}}).json()
    assert [e["agent_id"] for e in body["executions"]] == [str(platform.pk)]
    assert Execution.objects.get(agent=platform).organization_id == org.pk


def test_over_the_limit_agents_record_a_refused_attempt(org, alice, active_agent, client_for):
    limited = active_agent(name="Limited", trigger_events=["crm.**"], limits={"max_runs_per_hour": 2})
    free = active_agent(name="Free", trigger_events=["crm.**"])
    api = client_for(alice)
    for _ in range(2):
        assert _post(api, EVENT).json()["started"] == 2
    body = _post(api, EVENT).json()
    assert [e["agent_id"] for e in body["executions"]] == [str(free.pk)]
    [refused] = body["refused"]
    assert refused["agent_id"] == str(limited.pk) and refused["code"] == "ResourceExhausted"
    assert Execution.objects.filter(agent=limited).count() == 2
    attempt = TriggerAttempt.objects.get(pk=refused["attempt_id"])
    assert attempt.trigger_type == "event" and attempt.trigger_data["event_type"] == "crm.contact.created"
    listed = api.get("/api/v1/trigger-attempts/?trigger_type=event").json()
    assert listed["total"] == 1 and listed["results"][0]["code"] == "ResourceExhausted"


def test_input_schema_refusal_is_recorded(org, alice, active_agent, client_for):
    strict = active_agent(trigger_events=["crm.**"], input_schema={"type": "object", "required": ["contact_id"]})
    body = _post(client_for(alice), EVENT).json()
    assert body["started"] == 0 and body["refused"][0]["code"] == "InvalidInput"
    assert TriggerAttempt.objects.get(agent=strict).code == "InvalidInput"


def test_idempotency_key_makes_a_repeat_harmless(org, alice, active_agent, client_for):
    active_agent(name="One", trigger_events=["crm.**"])
    active_agent(name="Two", trigger_events=["crm.**"])
    api = client_for(alice)
    first = _post(api, EVENT, HTTP_IDEMPOTENCY_KEY="evt-123").json()
    second = _post(api, EVENT, HTTP_IDEMPOTENCY_KEY="evt-123").json()
    assert first["started"] == 2 and second["started"] == 0
    assert {e["id"] for e in second["replayed"]} == {e["id"] for e in first["executions"]}
    assert Execution.objects.count() == 2


def test_an_event_key_is_the_callers_and_answers_only_the_same_payload(org, alice, adam, active_agent, client_for):
    agent = active_agent(name="One", trigger_events=["crm.**"])
    first = _post(client_for(alice), EVENT, HTTP_IDEMPOTENCY_KEY="evt-9").json()
    # Another person's event with the same key is their own event (security issue #14, M1).
    theirs = _post(client_for(adam), EVENT, HTTP_IDEMPOTENCY_KEY="evt-9").json()
    assert theirs["started"] == 1 and theirs["executions"][0]["id"] != first["executions"][0]["id"]
    # The same key with another payload is refused, and says so.
    changed = {**EVENT, "payload": {**EVENT["payload"], "extra": True}}
    refused = _post(client_for(alice), changed, HTTP_IDEMPOTENCY_KEY="evt-9").json()
    assert refused["started"] == 0 and refused["refused"][0]["code"] == "IdempotencyKeyMismatch"
    assert TriggerAttempt.objects.get(agent=agent).code == "IdempotencyKeyMismatch"
    assert Execution.objects.count() == 2


def test_private_agents_stay_private_in_the_answer(org, mia, active_agent, client_for):
    active_agent(name="Secret", visibility="private", trigger_events=["crm.**"])
    public = active_agent(name="Open", trigger_events=["crm.**"])
    body = _post(client_for(mia), EVENT).json()
    assert body["started"] == 2 and [e["agent_id"] for e in body["executions"]] == [str(public.pk)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "Crm.Contact", "payload": {}}, "type"),
        ({"type": "crm.contact.*", "payload": {}}, "type"),
        ({"type": "ai.execution.completed", "payload": {}}, "type"),
        ({"payload": {}}, "type"),
        ({"type": "crm.contact.created", "payload": [1, 2]}, "payload"),
        ({"type": "crm.contact.created", "payload": {}, "extra": 1}, "extra"),
    ],
)
def test_bad_events_are_refused_and_nothing_runs(org, alice, active_agent, client_for, body, field):
    active_agent(trigger_events=["**"])
    error = assert_error(_post(client_for(alice), body), 400, "InvalidInput")
    assert field in error["details"]["validation_errors"]
    assert not Execution.objects.exists() and not TriggerAttempt.objects.exists()


def test_who_may_post_events(org, vic, alice, active_agent, client_for):
    active_agent(trigger_events=["**"])
    assert_error(_post(client_for(vic), EVENT), 403, "InsufficientPermissions")
    assert_error(_post(client_for(alice, scopes=["agents:read"]), EVENT), 403, "AgentAccessDenied")
    assert _post(client_for(alice, scopes=["agents:execute"]), EVENT).status_code == 202
    assert client_for(alice).get("/api/v1/events/").status_code == 405


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("trigger_events", ["crm.contact*"], "can never match"),
        ("trigger_events", ["ai.agent.*"], "platform's own"),
        ("trigger_conditions", {"expression": "payload.score >> 3"}, "character"),
        ("trigger_conditions", {"expression": "score > 3"}, "payload."),
        ("trigger_schedule", "0 0 L * *", "not supported"),
    ],
)
def test_agents_with_triggers_that_cannot_work_are_refused(alice, client_for, field, value, fragment):
    body = {"name": "Bad triggers", "system_prompt": "x", field: value}
    error = assert_error(client_for(alice).post("/api/v1/agents/", body, format="json"), 400, "InvalidAgentConfig")
    assert any(
        fragment in message for messages in error["details"]["validation_errors"].values() for message in messages
    )
