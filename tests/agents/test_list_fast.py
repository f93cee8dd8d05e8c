"""The agent list's plain serializer writes exactly what DRF's generic path wrote."""

from __future__ import annotations

import json

import pytest
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from agents.api.serializers import AgentDetailSerializer, AgentSerializer
from agents.models import Agent
from agents.vocabulary import CAPABILITY_TAGS

pytestmark = pytest.mark.django_db


def test_plain_agent_serializer_matches_the_generic_one(org, alice, make_agent, published, client_for):
    make_agent(
        alice,
        name="Full",
        capabilities=list(CAPABILITY_TAGS)[:2],
        allowed_tools=["lookup", "crm_*"],
        denied_tools=["crm_delete"],
        goals=["answer"],
        input_schema={"type": "object"},
        limits={"max_runs_per_hour": 7, "max_runs_per_day": 70},
    )
    api = client_for(alice)
    created = api.post("/api/v1/agents/", {"name": "Draft only", "system_prompt": "x"}, format="json")
    assert created.status_code == 201, created.content
    agents = list(Agent.objects.select_related("current_version", "created_by"))
    assert any(a.current_version_id is None for a in agents) and any(a.current_version_id for a in agents)
    for agent in agents:
        plain = json.loads(JSONRenderer().render(AgentSerializer(agent).data))
        generic = json.loads(
            JSONRenderer().render(serializers.ModelSerializer.to_representation(AgentSerializer(agent), agent))
        )
        assert plain == generic
        assert list(plain) == list(generic)
    # The detail keeps the generic path (and its extra fields).
    detail = AgentDetailSerializer(agents[0], context={"rights": {"read"}}).data
    assert {"access", "warnings", "recent_executions"} <= set(detail)


def test_agent_list_page_is_unchanged_in_shape(org, alice, make_agent, client_for):
    make_agent(alice, name="One")
    body = client_for(alice).get("/api/v1/agents/?limit=50").json()
    assert set(body) >= {"results", "total", "limit", "offset"} and body["total"] == 1
    assert set(body["results"][0]) == set(AgentSerializer.Meta.fields)


def test_agent_list_order_and_filters_as_before(org, alice, make_agent, client_for):
    """Without parameters the filter set is not built (config.api.filters.FilterBackend):
    the default order (newest first, id breaking ties) must be the one it applied."""
    from agents.api.filters import AgentFilter
    from agents.selectors import agent_list
    from tests.agents.conftest import actor_of

    for name in ("Bravo", "Alpha", "Charlie"):
        make_agent(alice, name=name)
    api = client_for(alice)
    plain = [a["name"] for a in api.get("/api/v1/agents/").json()["results"]]
    assert plain == ["Charlie", "Alpha", "Bravo"]
    built = AgentFilter(data={}, queryset=agent_list(actor=actor_of(alice))).qs
    assert [a.name for a in built] == plain
    assert [a["name"] for a in api.get("/api/v1/agents/?sort_by=name").json()["results"]] == [
        "Alpha",
        "Bravo",
        "Charlie",
    ]
    assert api.get("/api/v1/agents/?search=alp").json()["total"] == 1
    assert api.get("/api/v1/agents/?sort_by=bogus").status_code == 400
