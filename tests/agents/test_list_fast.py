"""The agent list's plain serializer writes exactly what DRF's generic path wrote."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from agents import services
from agents.api.filters import AgentFilter
from agents.api.serializers import AgentDetailSerializer, AgentSerializer, agent_list_data, agent_list_rows
from agents.models import Agent
from agents.selectors import agent_has_unpublished_changes, agent_list, with_runtime_state
from agents.vocabulary import CAPABILITY_TAGS
from tests.agents.conftest import actor_of

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


# --- The list's plain rows (agent_list_data): what AgentSerializer writes, byte for byte ----


@pytest.fixture
def varied(org, alice, mia, make_agent):
    """Agents covering each variant a listed row has: a draft only, a published one with and
    without unpublished changes, an archived and an inactive one, one busy, one whose last
    run failed (with stats), one with no creator, JSON the encoder escapes (U+2028) or writes
    in its own way (1e-07), empty and null JSON."""
    full = make_agent(
        alice,
        name="Full",
        capabilities=list(CAPABILITY_TAGS)[:2],
        allowed_tools=["lookup", "crm_*"],
        denied_tools=["crm_delete"],
        metadata={"note": "a\u2028b", "ratio": 1e-07, "big": 10**30},
        input_schema={"type": "object"},
        limits={"max_runs_per_hour": 7, "max_runs_per_day": 70},
        memory={"context_window": 1000, "max_history": 4},
    )
    services.agent_publish(actor=actor_of(alice), agent=full)
    changed = make_agent(alice, name="Changed", personality="Plain text personality", goals=[], examples=[])
    services.agent_publish(actor=actor_of(alice), agent=changed)
    changed.refresh_from_db()
    services.agent_update(actor=actor_of(alice), agent=changed, data={"system_prompt": "A new draft prompt."})
    make_agent(alice, name="Draft only", input_schema=None, output_schema=None, trigger_schedule=None)
    archived = make_agent(alice, name="Archived")
    inactive = make_agent(alice, name="Inactive")
    busy = make_agent(alice, name="Busy")
    failing = make_agent(mia, name="Failing", model_config={"provider": "openai", "model": "gpt-4o", "top_p": 0.9})
    orphan = make_agent(alice, name="Orphan")
    Agent.objects.update(is_active=True)  # a new agent is offline until activated
    Agent.objects.filter(pk=archived.pk).update(status="archived")
    Agent.objects.filter(pk=inactive.pk).update(is_active=False)
    Agent.objects.filter(pk=busy.pk).update(active_runs=2)
    Agent.objects.filter(pk=failing.pk).update(
        total_runs=3,
        successful_runs=1,
        failed_runs=2,
        cancelled_runs=1,
        total_tokens_used=1234,
        total_actions_taken=5,
        total_cost=Decimal("0.123457"),
        avg_response_time_ms=812,
        last_run_at=timezone.now(),
        last_run_status="failed",
        last_error="The provider failed.",
    )
    Agent.objects.filter(pk=orphan.pk).update(created_by=None)
    return Agent.objects.count()


def test_plain_rows_write_what_the_serializer_writes(varied, alice):
    queryset = with_runtime_state(Agent.objects.select_related("current_version", "created_by")).order_by("name")
    agents = list(queryset)
    assert {a.runtime_state for a in agents} == {"idle", "busy", "error", "offline"}
    unpublished = [agent_has_unpublished_changes(a) for a in agents]
    assert True in unpublished and False in unpublished
    rows = agent_list_data(agent_list_rows(queryset, 0, 100))
    rows_again = agent_list_data(agent_list_rows(queryset, 0, 100))  # versions decoded once, then kept
    assert len(rows) == len(agents) == varied
    for agent, row, again in zip(agents, rows, rows_again, strict=True):
        expected = JSONRenderer().render(AgentSerializer(agent).data)
        assert JSONRenderer().render(row) == expected == JSONRenderer().render(again), agent.name
        generic = serializers.ModelSerializer.to_representation(AgentSerializer(agent), agent)
        assert json.loads(expected) == json.loads(JSONRenderer().render(generic))


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?limit=3",
        "?limit=3&offset=6",
        "?sort_by=name",
        "?sort_by=last_run_at&sort_order=desc",
        "?sort_by=execution_count",
        "?status=archived",
        "?runtime_state=error",
        "?is_active=false",
        "?search=fail",
        "?offset=100",
    ],
)
def test_the_list_answers_what_the_serializer_wrote(query, varied, alice, client_for):
    """The response, byte for byte, is the page AgentSerializer wrote over the same agents."""
    response = client_for(alice).get(f"/api/v1/agents/{query}")
    assert response.status_code == 200, response.content
    body = response.json()
    ids = [r["id"] for r in body["results"]]
    by_id = {str(a.pk): a for a in agent_list(actor=actor_of(alice)).filter(pk__in=ids)}
    filtered = AgentFilter(
        data=dict(p.split("=") for p in query.lstrip("?").split("&") if p), queryset=agent_list(actor=actor_of(alice))
    )
    expected = {
        "results": [AgentSerializer(by_id[i]).data for i in ids],
        "total": filtered.qs.count(),
        "limit": body["limit"],
        "offset": body["offset"],
    }
    assert response.content == JSONRenderer().render(expected)
