"""Capability tags come from a documented list and the personality's tone, behavior and
language_style from the reference's enumerations: checked on write, 400 naming the allowed
values, while rows stored before the lists keep working (issue 20)."""

from __future__ import annotations

import pytest

from agents import services
from agents.config import default_config, merge_config
from agents.models import Agent
from agents.template_data import TEMPLATES
from agents.validation import agent_config_validate
from agents.vocabulary import CAPABILITY_TAGS, PERSONALITY_ENUMS
from config.api.errors import ApiError
from tests.agents.conftest import actor_of, body
from tests.conftest import assert_error


@pytest.mark.parametrize(
    ("overrides", "field", "allowed"),
    [
        ({"capabilities": ["lead_qualification", "mind_reading"]}, "capabilities.1", "lead_qualification"),
        ({"personality": {"tone": "grumpy"}}, "personality.tone", "enthusiastic"),
        ({"personality": {"behavior": ["helpful", "sneaky"]}}, "personality.behavior", "empathetic"),
        ({"personality": {"behavior": "lazy"}}, "personality.behavior", "technical"),
        ({"personality": {"language_style": "verbose"}}, "personality.language_style", "conversational"),
    ],
)
def test_a_value_outside_the_list_is_refused_with_the_allowed_values(overrides, field, allowed, alice, org, client_for):
    response = client_for(alice).post("/api/v1/agents/", body(**overrides), format="json")
    error = assert_error(response, 400, "InvalidAgentConfig")
    [message] = error["details"]["validation_errors"][field]
    assert allowed in message, message
    assert not Agent.objects.filter(organization=org).exists()


def test_every_listed_value_is_accepted(alice, client_for):
    api = client_for(alice)
    for tone, behavior, style in zip(*PERSONALITY_ENUMS.values(), strict=False):
        personality = {"traits": ["calm"], "tone": tone, "behavior": [behavior], "language_style": style}
        response = api.post(
            "/api/v1/agents/",
            body(name=f"Bot {tone}", personality=personality, capabilities=sorted(CAPABILITY_TAGS)),
            format="json",
        )
        assert response.status_code == 201, response.content
        assert response.json()["personality"]["tone"] == tone
        assert response.json()["capabilities"] == sorted(CAPABILITY_TAGS)


def test_the_vocabulary_endpoint_documents_the_lists(alice, client_for):
    data = client_for(alice).get("/api/v1/agents/vocabulary/").json()
    assert {row["name"] for row in data["capabilities"]} == set(CAPABILITY_TAGS)
    assert all(row["description"] for row in data["capabilities"])
    assert data["personality"] == {
        "tone": ["professional", "casual", "formal", "enthusiastic"],
        "behavior": ["helpful", "direct", "empathetic", "technical"],
        "language_style": ["concise", "detailed", "conversational"],
    }


def test_seeded_templates_validate():
    for template in TEMPLATES:
        agent_config_validate(merge_config(default_config(), template["config"]))


def test_a_row_stored_before_the_lists_can_still_be_edited_and_published(alice, org, make_agent, client_for):
    agent = make_agent(alice)
    # As written before validation existed (no service would accept these now).
    Agent.objects.filter(pk=agent.pk).update(
        capabilities=["legacy_tag"], personality={"tone": "warm", "behavior": ["asks first"]}
    )
    api = client_for(alice)
    edited = api.patch(f"/api/v1/agents/{agent.pk}/", {"description": "Still editable."}, format="json")
    assert edited.status_code == 200, edited.content
    agent.refresh_from_db()
    services.agent_publish(actor=actor_of(alice), agent=agent)
    # A new value is checked, the old ones are not.
    changed = api.patch(f"/api/v1/agents/{agent.pk}/", {"personality": {"tone": "gruff"}}, format="json")
    error = assert_error(changed, 400, "InvalidAgentConfig")
    assert set(error["details"]["validation_errors"]) == {"personality.tone"}
    added = api.patch(f"/api/v1/agents/{agent.pk}/", {"capabilities": ["legacy_tag", "made_up"]}, format="json")
    error = assert_error(added, 400, "InvalidAgentConfig")
    assert set(error["details"]["validation_errors"]) == {"capabilities.1"}


def test_previous_only_spares_the_values_it_had():
    previous = {"capabilities": ["old_tag"], "personality": {"tone": "warm"}}
    config = merge_config(default_config(), body(capabilities=["old_tag"], personality={"tone": "warm"}))
    with pytest.raises(ApiError) as refused:
        agent_config_validate(config)
    assert {"capabilities.0", "personality.tone"} <= set(refused.value.details["validation_errors"])
    assert agent_config_validate(config, previous=previous)["personality"] == {"tone": "warm"}
