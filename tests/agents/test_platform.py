"""Templates, the marketplace, platform agents with per-organization overrides, and what
the execution runtime gets from the agents app."""

from __future__ import annotations

import pytest

from agents import selectors, services
from agents.models import Agent, AgentConfiguration, AgentStatus, AgentTemplate, AgentType
from agents.template_data import TEMPLATES
from config.api.errors import ApiError
from tests.agents.conftest import actor_of, body
from tests.conftest import assert_error


@pytest.fixture
def platform_agent(db):
    """A published platform agent (no organization), as a superuser makes one in the admin."""
    agent = services.agent_create(
        actor=None,
        data=body(name="Platform Helper", instructions="Platform rules.", denied_tools=["email_send"]),
        organization=None,
    )
    services.agent_publish(actor=None, agent=agent)
    return Agent.objects.select_related("current_version").get(pk=agent.pk)


# --- templates ------------------------------------------------------------------------------


def test_one_template_per_agent_type_is_seeded(db):
    assert sorted(AgentTemplate.objects.values_list("agent_type", flat=True)) == sorted(AgentType.values)
    assert AgentTemplate.objects.count() == len(TEMPLATES) == 5


def test_every_template_is_a_valid_agent(alice, client_for):
    client = client_for(alice)
    for template in client.get("/api/v1/agent-templates/").json()["results"]:
        response = client.post("/api/v1/agents/from-template/", {"template": template["key"]}, format="json")
        assert response.status_code == 201, (template["key"], response.content[:400])
        created = response.json()
        assert created["agent_type"] == template["agent_type"]
        # The orchestrator's team is the organization's own agents: the template starts without one.
        expected = (
            ["type_config.managed_agents: none yet, so this orchestrator may delegate to no agent."]
            if template["agent_type"] == "orchestrator"
            else []
        )
        assert created["warnings"] == expected, template["key"]
        publish = client.post(f"/api/v1/agents/{created['id']}/publish/", {}, format="json")
        assert publish.status_code == 201, publish.content[:300]


def test_from_template_with_overrides(alice, client_for):
    response = client_for(alice).post(
        "/api/v1/agents/from-template/",
        {"template": "sales-development-rep", "name": "Our SDR", "model_config": {"temperature": 0.1}},
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["name"], data["domain"], data["model_config"]["temperature"]) == ("Our SDR", "sales", 0.1)
    assert data["trigger_events"] == ["crm.contact.created", "form.submitted"]
    assert Agent.objects.get(pk=data["id"]).template.key == "sales-development-rep"
    assert_error(
        client_for(alice).post("/api/v1/agents/from-template/", {"template": "nope"}, format="json"),
        400,
        "InvalidInput",
    )


def test_template_sync_is_idempotent(db):
    AgentTemplate.objects.filter(key="security-guardian").update(name="Changed")
    assert services.agent_template_sync() == "agent templates: 0 created, 5 refreshed"
    assert AgentTemplate.objects.get(key="security-guardian").name == "Security Guardian"


def test_viewer_cannot_create_from_template(vic, client_for):
    response = client_for(vic).post("/api/v1/agents/from-template/", {"template": "security-guardian"}, format="json")
    assert_error(response, 403, "InsufficientPermissions")


# --- marketplace --------------------------------------------------------------------------


def test_marketplace_lists_public_published_agents_of_everyone(alice, oscar, make_agent, client_for, platform_agent):
    public = make_agent(oscar, name="Globex Public", visibility="public")
    services.agent_publish(actor=actor_of(oscar), agent=public)
    make_agent(oscar, name="Globex Draft", visibility="public")  # not published
    private = make_agent(oscar, name="Globex Private", visibility="organization")
    services.agent_publish(actor=actor_of(oscar), agent=private)
    Agent.objects.filter(pk=platform_agent.pk).update(visibility="public")
    rows = client_for(alice).get("/api/v1/marketplace/").json()["results"]
    assert [(r["name"], r["publisher"]) for r in rows] == [
        ("Globex Public", "Globex"),
        ("Platform Helper", "Agentry platform"),
    ]
    assert "stats" not in rows[0] and "system_prompt" not in rows[0]
    detail = client_for(alice).get(f"/api/v1/marketplace/{public.pk}/").json()
    assert detail["config"]["system_prompt"] == public.system_prompt
    assert_error(client_for(alice).get(f"/api/v1/marketplace/{private.pk}/"), 404, "AgentNotFound")


def test_copy_from_marketplace(alice, vic, oscar, org, make_agent, client_for):
    public = make_agent(oscar, name="Shared Wisdom", visibility="public", model_config={"temperature": 0.4})
    services.agent_publish(actor=actor_of(oscar), agent=public)
    services.agent_update(actor=actor_of(oscar), agent=public, data={"system_prompt": "Unpublished draft."})
    response = client_for(alice).post(f"/api/v1/marketplace/{public.pk}/copy/", {}, format="json")
    assert response.status_code == 201, response.content
    copy = Agent.objects.get(pk=response.json()["id"])
    assert copy.organization == org and copy.copied_from == public and copy.status == AgentStatus.DRAFT
    assert copy.system_prompt == "You answer customer questions about Acme products."  # the published one
    assert copy.created_by == alice and str(copy.temperature) == "0.40"
    assert_error(
        client_for(alice).post(f"/api/v1/marketplace/{public.pk}/copy/", {}, format="json"), 409, "DuplicateAgentName"
    )
    renamed = client_for(alice).post(f"/api/v1/marketplace/{public.pk}/copy/", {"name": "Our Wisdom"}, format="json")
    assert renamed.status_code == 201
    assert_error(
        client_for(vic).post(f"/api/v1/marketplace/{public.pk}/copy/", {"name": "V"}, format="json"),
        403,
        "InsufficientPermissions",
    )


# --- platform agents ----------------------------------------------------------------------


def test_platform_agents_are_listed_apart_and_not_in_agents(alice, client_for, platform_agent):
    client = client_for(alice)
    assert [r["name"] for r in client.get("/api/v1/platform-agents/").json()["results"]] == ["Platform Helper"]
    assert client.get("/api/v1/agents/").json()["total"] == 0
    assert_error(client.get(f"/api/v1/agents/{platform_agent.pk}/"), 404, "AgentNotFound")
    assert_error(
        client.patch(f"/api/v1/agents/{platform_agent.pk}/", {"description": "x"}, format="json"), 404, "AgentNotFound"
    )


def test_organization_overrides_of_a_platform_agent(alice, adam, mia, oscar, org, client_for, platform_agent):
    url = f"/api/v1/platform-agents/{platform_agent.pk}/configuration/"
    overrides = {
        "model_config": {"model": "gpt-4.1", "temperature": 0.1},
        "limits": {"max_runs_per_day": 50},
        "instructions": "Answer in French.",
        "denied_tools": ["crm_delete_*"],
    }
    response = client_for(adam).put(url, {"overrides": overrides}, format="json")
    assert response.status_code == 200, response.content
    effective = response.json()["effective_config"]
    assert effective["model_config"]["model"] == "gpt-4.1" and effective["model_config"]["provider"] == "openai"
    assert effective["limits"]["max_runs_per_day"] == 50 and effective["limits"]["max_steps_per_run"] == 10
    assert effective["instructions"] == "Platform rules.\n\nAnswer in French."
    assert effective["denied_tools"] == ["email_send", "crm_delete_*"]
    listed = client_for(mia).get("/api/v1/platform-agents/").json()["results"][0]
    assert listed["configuration"]["overrides"] == overrides
    # Another organization is untouched by it.
    assert client_for(oscar).get("/api/v1/platform-agents/").json()["results"][0]["configuration"] is None
    version, config, warnings = selectors.agent_run_config(agent=platform_agent, organization=org)
    assert config["model_config"]["model"] == "gpt-4.1" and warnings == [] and version.is_current
    # Members may read it, not change it.
    assert client_for(mia).get(url).status_code == 200
    assert_error(client_for(mia).put(url, {"overrides": {}}, format="json"), 403, "InsufficientPermissions")
    # Switched off, the platform's own configuration applies again.
    client_for(alice).put(url, {"overrides": overrides, "is_active": False}, format="json")
    _, config, _ = selectors.agent_run_config(agent=platform_agent, organization=org)
    assert config["model_config"]["model"] == "gpt-4o-mini"
    assert client_for(alice).delete(url).status_code == 204
    assert not AgentConfiguration.objects.filter(organization=org).exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"system_prompt": "Ignore the platform."}, "overrides.system_prompt"),
        ({"allowed_tools": ["*"]}, "overrides.allowed_tools"),
        ({"model_config": {"temperature": 7}}, "overrides.model_config.temperature"),
        ({"trigger_schedule": "whenever"}, "overrides.trigger_schedule"),
    ],
)
def test_bad_overrides_are_refused(overrides, field, adam, org, client_for, platform_agent):
    url = f"/api/v1/platform-agents/{platform_agent.pk}/configuration/"
    error = assert_error(client_for(adam).put(url, {"overrides": overrides}, format="json"), 400, "InvalidAgentConfig")
    assert field in error["details"]["validation_errors"]
    assert not AgentConfiguration.objects.exists()


def test_draft_platform_agents_are_not_offered(alice, client_for):
    draft = services.agent_create(actor=None, data=body(name="Unfinished"), organization=None)
    assert client_for(alice).get("/api/v1/platform-agents/").json()["total"] == 0
    assert_error(client_for(alice).get(f"/api/v1/platform-agents/{draft.pk}/"), 404, "AgentNotFound")


# --- what the runtime gets ----------------------------------------------------------------


def test_run_config_for_an_organizations_agent(alice, mia, vic, oscar, org, make_agent, published):
    draft = make_agent(alice, name="Draft")
    with pytest.raises(ApiError) as caught:
        selectors.agent_run_config(agent=draft, organization=org)
    assert caught.value.code == "Conflict"
    services.agent_update(actor=actor_of(alice), agent=published, data={"system_prompt": "Draft only."})
    agent = selectors.agent_get_for_execution(actor=actor_of(mia), agent_id=published.pk)
    version, config, warnings = selectors.agent_run_config(agent=agent, organization=org)
    assert version.version == "1.0.0" and warnings == []
    assert config["system_prompt"] == "You answer customer questions about Acme products."  # never the draft
    services.agent_deprecate(actor=actor_of(alice), agent=published)
    agent = selectors.agent_get_for_execution(actor=actor_of(mia), agent_id=published.pk)
    assert "deprecated" in selectors.agent_run_config(agent=agent, organization=org)[2][0]
    with pytest.raises(ApiError) as caught:
        selectors.agent_get_for_execution(actor=actor_of(vic), agent_id=published.pk)
    assert caught.value.code == "InsufficientPermissions"
    with pytest.raises(ApiError) as caught:
        selectors.agent_get_for_execution(actor=actor_of(oscar), agent_id=published.pk)
    assert caught.value.code == "AgentNotFound"
    services.agent_archive(actor=actor_of(alice), agent=published)
    published.refresh_from_db()
    with pytest.raises(ApiError):
        selectors.agent_run_config(agent=published, organization=org)
