"""The admin for operators: scoping, saving through the services, actions, the diff view."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from agents import services
from agents.models import Agent, AgentVersion
from executions.models import PlatformEvent
from tests.agents.conftest import actor_of, body
from tests.factories import UserFactory

CHANGELIST = "/admin/agents/agent/"


@pytest.fixture
def superuser(db):
    return UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_adam(adam):
    adam.is_staff = True
    adam.save(update_fields=["is_staff"])
    return adam


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def platform_agent(db):
    agent = services.agent_create(actor=None, data=body(name="Platform Helper"), organization=None)
    services.agent_publish(actor=None, agent=agent)
    return agent


def _form_data(**overrides) -> dict:
    data = {
        "name": "Admin Made",
        "slug": "",
        "description": "",
        "avatar_url": "",
        "visibility": "organization",
        "metadata": "{}",
        "agent_type": "analyst",
        "domain": "",
        "capabilities": "",
        "personality": "You are careful.",
        "system_prompt": "Summarise the numbers.",
        "instructions": "",
        "goals": "[]",
        "constraints": "[]",
        "examples": "[]",
        "llm_provider": "openai",
        "llm_model": "gpt-4o",
        "temperature": "0.5",
        "max_tokens": "1000",
        "top_p": "",
        "llm_fallbacks": "[]",
        "llm_extra": "{}",
        "max_steps_per_run": "10",
        "max_tool_calls_per_step": "3",
        "timeout_seconds": "120",
        "max_runs_per_hour": "60",
        "max_runs_per_day": "500",
        "allowed_tools": "data_query,notify_user",
        "denied_tools": "",
        "trigger_events": "",
        "trigger_schedule": "",
        "trigger_timezone": "UTC",
        "trigger_conditions": "{}",
        "input_schema": "null",
        "output_schema": "null",
    }
    for prefix in ("versions", "goal_records", "user_grants"):
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    data.update(overrides)
    return data


def test_superuser_sees_every_agent_with_its_columns(superuser, alice, oscar, make_agent, platform_agent):
    make_agent(alice, name="Acme Bot")
    make_agent(oscar, name="Globex Bot")
    page = _client(superuser).get(CHANGELIST).content.decode()
    for text in ("Acme Bot", "Globex Bot", "Platform Helper", "— platform —", "1.0.0", "offline"):
        assert text in page, text
    filtered = _client(superuser).get(f"{CHANGELIST}?owner=platform").content.decode()
    assert "Platform Helper" in filtered and "Acme Bot" not in filtered


def test_organization_admin_sees_only_its_agents(staff_adam, alice, oscar, make_agent, platform_agent):
    mine = make_agent(alice, name="Acme Bot")
    theirs = make_agent(oscar, name="Globex Bot")
    client = _client(staff_adam)
    page = client.get(CHANGELIST).content.decode()
    assert "Acme Bot" in page and "Globex Bot" not in page and "Platform Helper" not in page
    assert client.get(f"{CHANGELIST}{mine.pk}/change/").status_code == 200
    for hidden in (theirs, platform_agent):
        response = client.get(f"{CHANGELIST}{hidden.pk}/change/")
        assert response.status_code == 302  # "does not exist" → back to the index
        assert client.get(f"{CHANGELIST}{hidden.pk}/diff/").status_code == 404


def test_adding_through_the_admin_goes_through_the_services(staff_adam, org, django_capture_on_commit_callbacks):
    client = _client(staff_adam)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{CHANGELIST}add/", _form_data(organization=str(org.pk)))
    assert response.status_code == 302, response.content.decode()[:2000]
    agent = Agent.objects.get(name="Admin Made")
    assert (agent.organization, agent.created_by, agent.slug, agent.allowed_tools) == (
        org,
        staff_adam,
        "admin-made",
        ["data_query", "notify_user"],
    )
    assert PlatformEvent.objects.filter(organization=org, event_type="ai.agent.created", agent_id=agent.pk).exists()


def test_organization_admin_cannot_make_platform_agents(staff_adam):
    response = _client(staff_adam).post(f"{CHANGELIST}add/", _form_data(organization=""))
    assert response.status_code == 200 and not Agent.objects.exists()


def test_superuser_makes_platform_agents(superuser):
    response = _client(superuser).post(f"{CHANGELIST}add/", _form_data(organization=""))
    assert response.status_code == 302
    assert Agent.objects.get(name="Admin Made").organization is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", "2.5"),
        ("llm_model", "gpt 9"),
        ("trigger_schedule", "61 * * * *"),
        ("trigger_timezone", "Moon/Base"),
        ("input_schema", json.dumps({"type": "wrong"})),
        ("max_steps_per_run", "0"),
        # A remote reference is never fetched: refused, as in the API.
        ("input_schema", json.dumps({"$ref": "http://127.0.0.1:9/schema"})),
        # What jsonb cannot store, and what Django's JSON form field recursed on: errors, not 500s.
        ("metadata", json.dumps({"note": "x\u0000"})),
        ("goals", "[" * 1000 + "]" * 1000),
        ("personality", '{"tone": "calm\\u0000"}'),
        # An analyst has no managed agents; its report templates are checked as in the API.
        ("type_config", json.dumps({"managed_agents": []})),
        ("type_config", json.dumps({"report_templates": [{"name": "Bad Name", "sections": ["s"]}]})),
    ],
)
def test_admin_form_refuses_what_the_api_refuses(field, value, staff_adam, org):
    response = _client(staff_adam).post(f"{CHANGELIST}add/", _form_data(organization=str(org.pk), **{field: value}))
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    assert not Agent.objects.exists()


def test_admin_saves_type_config_as_the_api_does(staff_adam, org):
    templates = [{"name": "weekly", "sections": ["summary", "actions"]}]
    response = _client(staff_adam).post(
        f"{CHANGELIST}add/",
        _form_data(organization=str(org.pk), type_config=json.dumps({"report_templates": templates})),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    agent = Agent.objects.get(name="Admin Made")
    assert agent.type_config == {
        "report_templates": [
            {"name": "weekly", "description": "", "sections": ["summary", "actions"], "output_schema": None}
        ],
        "default_report": None,
    }


def test_admin_refuses_a_duplicate_name(staff_adam, alice, org, make_agent):
    make_agent(alice, name="Admin Made")
    response = _client(staff_adam).post(f"{CHANGELIST}add/", _form_data(organization=str(org.pk)))
    assert response.status_code == 200 and Agent.objects.filter(organization=org).count() == 1


def test_publish_activate_deactivate_actions(staff_adam, alice, make_agent):
    agent = make_agent(alice)
    client = _client(staff_adam)
    client.post(CHANGELIST, {"action": "publish_selected", "_selected_action": [str(agent.pk)]})
    agent.refresh_from_db()
    assert agent.current_version.version == "1.0.0" and agent.current_version.created_by == staff_adam
    client.post(CHANGELIST, {"action": "activate_selected", "_selected_action": [str(agent.pk)]})
    agent.refresh_from_db()
    assert agent.is_active
    client.post(CHANGELIST, {"action": "deactivate_selected", "_selected_action": [str(agent.pk)]})
    agent.refresh_from_db()
    assert not agent.is_active
    # Publishing again without a change is refused, and said so.
    response = client.post(CHANGELIST, {"action": "publish_selected", "_selected_action": [str(agent.pk)]}, follow=True)
    assert "Nothing changed since version 1.0.0" in response.content.decode()
    assert AgentVersion.objects.filter(agent=agent).count() == 1


def test_version_history_inline_and_diff_view(staff_adam, alice, published):
    services.agent_update(actor=actor_of(alice), agent=published, data={"model_config": {"temperature": 1.4}})
    services.agent_publish(actor=actor_of(alice), agent=published)
    client = _client(staff_adam)
    change = client.get(f"{CHANGELIST}{published.pk}/change/").content.decode()
    assert "1.1.0" in change and "1.0.0" in change and "vs draft" in change
    diff = client.get(f"{CHANGELIST}{published.pk}/diff/").content.decode()
    assert "model_config.temperature" in diff and "0.3" in diff and "1.4" in diff
    same = client.get(f"{CHANGELIST}{published.pk}/diff/?from=1.1.0&to=draft").content.decode()
    assert "are identical" in same
    missing = client.get(f"{CHANGELIST}{published.pk}/diff/?from=4.0.0&to=draft").content.decode()
    assert "has no version" in missing


def test_versions_are_read_only_in_the_admin(superuser, published):
    version = published.current_version
    client = _client(superuser)
    assert client.get(f"/admin/agents/agentversion/{version.pk}/change/").status_code == 200
    client.post(f"/admin/agents/agentversion/{version.pk}/change/", {"changelog": "rewritten"})
    client.post(f"/admin/agents/agentversion/{version.pk}/delete/", {"post": "yes"})
    version.refresh_from_db()
    assert version.changelog == "first"


def test_goals_are_shown_with_their_evaluation(staff_adam, alice, make_agent):
    make_agent(alice, goals=[{"name": "Be reliable", "metric": "success_rate", "target": 95}])
    page = _client(staff_adam).get("/admin/agents/agentgoal/").content.decode()
    assert "Be reliable" in page and "success_rate" in page


def test_templates_are_for_superusers_only(staff_adam, superuser):
    assert _client(staff_adam).get("/admin/agents/agenttemplate/").status_code == 403
    assert "Security Guardian" in _client(superuser).get("/admin/agents/agenttemplate/").content.decode()


def test_editing_through_the_admin_is_recorded(staff_adam, alice, org, make_agent, django_capture_on_commit_callbacks):
    agent = make_agent(alice, name="Admin Made", goals=[])
    data = _form_data(system_prompt="Sharper instructions.", description="Edited in the admin.")
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(staff_adam).post(f"{CHANGELIST}{agent.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:1000]
    agent.refresh_from_db()
    assert (agent.system_prompt, agent.updated_by, agent.organization) == ("Sharper instructions.", staff_adam, org)
    event = PlatformEvent.objects.get(organization=org, event_type="ai.agent.updated")
    assert "system_prompt" in event.payload["changes"] and "description" in event.payload["changes"]


def test_admin_keeps_a_deprecated_agent_frozen(staff_adam, alice, make_agent):
    agent = make_agent(alice, name="Admin Made", goals=[], system_prompt="Summarise the numbers.")
    services.agent_publish(actor=actor_of(alice), agent=agent)
    services.agent_deprecate(actor=actor_of(alice), agent=agent)
    data = _form_data(system_prompt="Changed after deprecation.")
    data |= {"versions-TOTAL_FORMS": "1", "versions-INITIAL_FORMS": "1"}
    data |= {"versions-0-id": str(agent.versions.get().pk), "versions-0-agent": str(agent.pk)}
    response = _client(staff_adam).post(f"{CHANGELIST}{agent.pk}/change/", data)
    assert response.status_code == 200 and "frozen" in response.content.decode()
    agent.refresh_from_db()
    assert agent.system_prompt == "Summarise the numbers."


def test_personality_is_prose_or_a_json_object_in_the_admin(staff_adam, org):
    traits = json.dumps({"traits": ["calm"], "tone": "casual"})
    _client(staff_adam).post(f"{CHANGELIST}add/", _form_data(organization=str(org.pk), personality=traits))
    assert Agent.objects.get(name="Admin Made").personality == {"traits": ["calm"], "tone": "casual"}
    response = _client(staff_adam).post(
        f"{CHANGELIST}add/", _form_data(organization=str(org.pk), name="Broken", personality="{not json")
    )
    assert response.status_code == 200 and "not valid" in response.content.decode()
    page = _client(staff_adam).get(f"{CHANGELIST}{Agent.objects.get(name='Admin Made').pk}/change/").content.decode()
    assert "&quot;traits&quot;" in page


def test_plain_text_personality_is_stored_as_text(staff_adam, org):
    _client(staff_adam).post(f"{CHANGELIST}add/", _form_data(organization=str(org.pk)))
    assert Agent.objects.get(name="Admin Made").personality == "You are careful."


def test_json_fields_show_their_errors_in_place_and_the_form_keeps_its_values(staff_adam, org):
    """Issue #19: a bad JSON or schema problem is shown on its own field, with the parser's
    position or the validator's path; every other problem of the same save is shown too, and
    nothing typed is lost."""
    broken_extra = '{"seed": 7,\n "x": }'
    bad_schema = json.dumps({"type": "object", "properties": {"when": {"type": "wrong"}}})
    response = _client(staff_adam).post(
        f"{CHANGELIST}add/",
        _form_data(
            organization=str(org.pk),
            name="Keeps Its Values",
            llm_extra=broken_extra,
            input_schema=bad_schema,
            memory_config=json.dumps({"max_history": -1, "window": 3}),
            llm_fallbacks=json.dumps([{"provider": "openai"}]),
        ),
    )
    assert response.status_code == 200
    assert not Agent.objects.exists()
    form = response.context["adminform"].form
    errors = {field: list(messages) for field, messages in form.errors.items()}
    assert errors.keys() == {"llm_extra", "input_schema", "memory_config", "llm_fallbacks"}, errors
    (extra,) = errors["llm_extra"]
    assert extra.startswith("Not valid JSON: Expecting value at line 2, column 7"), extra
    assert "(at properties/when/type)" in errors["input_schema"][0]
    assert errors["memory_config"] == [
        "memory.window: Unknown setting; one of ['context_window', 'max_history'].",
        "memory.max_history: Must be a whole number from 0 to 500.",
    ], errors
    assert errors["llm_fallbacks"][0].startswith("model_config.fallbacks.0: ")
    # What was typed stays in the form, the broken text included.
    assert form["name"].value() == "Keeps Its Values"
    assert form["llm_extra"].value() == broken_extra
    assert json.loads(form["input_schema"].value()) == json.loads(bad_schema)
    # Shown next to the field: each error list sits in its field's row, and the collapsed
    # sections holding an error are open.
    page = response.content.decode()
    for field in errors:
        assert re.search(
            rf'<div class="form-row errors field-{field}">\s*<ul class="errorlist" id="id_{field}_error">', page
        ), field
    collapsed = re.compile(r"<details><summary>\s*<h2[^>]*>Schemas</h2>")
    assert collapsed.search(_client(staff_adam).get(f"{CHANGELIST}add/").content.decode())  # closed when fine
    assert not collapsed.search(page)  # open when it holds an error
