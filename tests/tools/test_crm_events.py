"""CRM tools emit the reference's domain events (crm.contact.created …): recorded with a
payload the catalogue describes, and starting the organization's event-triggered agents as
children of the run that caused them (issue 20)."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from agents.services import agent_activate, agent_publish, agent_update
from executions.event_catalogue import EVENT_CATALOGUE
from executions.models import Execution, ExecutionLog, PlatformEvent, TriggerType

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm(tool_env, http_fake):
    http_fake.route("POST", "/crm/createContact", json={"id": "c-77", "email": "new@example.test"})
    http_fake.route("POST", "/crm/updateContact", json={"id": "c-77"})
    http_fake.route("POST", "/crm/addNote", json={"note_id": "n-5"})
    http_fake.route("POST", "/crm/deleteContact", json={"deleted": True})
    http_fake.route("POST", "/crm/getContact", json={"id": "c-77"})
    tool_env.grant("read_contacts", "write_contacts", "delete_contacts")
    tool_env.module("crm", http_fake.url("/crm"))
    return tool_env


@pytest.fixture
def active_agent(make_agent, owner_actor):
    def make(**fields):
        agent = make_agent(**fields)
        agent_activate(actor=owner_actor, agent=agent)
        agent.refresh_from_db()
        return agent

    return make


def _children(execution):
    return Execution.objects.filter(parent=execution)


def test_a_created_contact_starts_the_agents_that_listen_for_it(crm, active_agent):
    listener = active_agent(name="Welcomer", trigger_events=["crm.contact.created"])
    active_agent(name="Notes only", trigger_events=["crm.note.*"])
    outcome = crm.call(
        "crm_create_contact", {"email": "new@example.test", "first_name": "Ann", "company": "Acme"}, step_number=1
    )
    assert outcome.status == "completed", outcome.error
    event = PlatformEvent.objects.get(event_type="crm.contact.created")
    assert event.payload == {
        "source": "ai_agent",
        "agent_id": str(crm.agent.pk),
        "execution_id": str(crm.execution.pk),
        "tool": "crm_create_contact",
        "contact_id": "c-77",
        "email": "new@example.test",
        "first_name": "Ann",
        "company": "Acme",
    }
    [child] = _children(crm.execution)
    assert child.agent_id == listener.pk and child.trigger_type == TriggerType.EVENT
    assert child.input["context"] == event.payload and child.depth == crm.execution.depth + 1
    line = ExecutionLog.objects.get(execution=crm.execution, message__startswith="Event crm.contact.created")
    assert line.metadata["executions"] == [str(child.pk)]
    # The same call again (a crash, a retry) starts nothing twice.
    crm.port.run(context=crm.context(1), name="crm_create_contact", arguments={"email": "new@example.test"})
    assert _children(crm.execution).count() == 1


def test_the_emitting_agent_does_not_trigger_itself(crm, owner_actor, active_agent):
    agent_update(actor=owner_actor, agent=crm.agent, data={"trigger_events": ["crm.**"]})
    agent_publish(actor=owner_actor, agent=crm.agent)
    agent_activate(actor=owner_actor, agent=crm.agent)
    other = active_agent(name="Other", trigger_events=["crm.**"])
    assert crm.call("crm_update_contact", {"contact_id": "c-77", "updates": {"phone": "1"}}).status == "completed"
    assert [c.agent_id for c in _children(crm.execution)] == [other.pk]


def test_a_refused_start_is_in_the_runs_log(crm, active_agent):
    active_agent(name="Strict", trigger_events=["crm.**"], input_schema={"type": "object", "required": ["deal_id"]})
    assert crm.call("crm_add_note", {"contact_id": "c-77", "content": "Called"}).status == "completed"
    line = ExecutionLog.objects.get(execution=crm.execution, message__startswith="Event crm.note.created")
    assert line.level == "warn" and "refused 1" in line.message
    assert not _children(crm.execution).exists()


def test_every_crm_event_payload_matches_the_catalogue_and_reads_emit_nothing(crm, http_fake):
    crm.call("crm_get_contact", {"contact_id": "c-77"})
    assert not PlatformEvent.objects.filter(event_type__startswith="crm.").exists()
    crm.call("crm_create_contact", {"email": "new@example.test"})
    crm.call("crm_update_contact", {"contact_id": "c-77", "updates": {"phone": "1", "company": "B"}})
    crm.call("crm_add_note", {"contact_id": "c-77", "content": "Called", "type": "call"})
    crm.port.run(context=crm.context(), name="crm_delete_contact", arguments={"contact_id": "c-77", "reason": "dup"})
    events = {e.event_type: e.payload for e in PlatformEvent.objects.filter(event_type__startswith="crm.")}
    assert set(events) == {"crm.contact.created", "crm.contact.updated", "crm.note.created", "crm.contact.deleted"}
    for event_type, payload in events.items():
        schema = EVENT_CATALOGUE[event_type]["payload_schema"]
        problems = [e.message for e in Draft202012Validator(schema).iter_errors(payload)]
        assert not problems, (event_type, payload, problems)
    assert events["crm.contact.updated"]["changes"] == ["company", "phone"]
    assert events["crm.note.created"]["note_id"] == "n-5" and events["crm.note.created"]["note_type"] == "call"
    assert events["crm.contact.deleted"]["reason"] == "dup"


def test_a_failed_crm_call_emits_nothing(crm, http_fake):
    http_fake.route("POST", "/crm/createContact", status=500, json={"error": "down"})
    assert crm.call("crm_create_contact", {"email": "x@example.test"}).status == "failed"
    assert not PlatformEvent.objects.filter(event_type__startswith="crm.").exists()
