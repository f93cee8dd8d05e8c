"""The REST endpoints of API.md (Agents): shapes, filters, pagination, query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents import services
from agents.models import Agent, AgentStatus
from tests.agents.conftest import actor_of, body
from tests.agents.factories import AgentFactory
from tests.conftest import assert_error
from tests.factories import MembershipFactory, UserFactory


def test_create_read_patch_delete(alice, client_for, org):
    client = client_for(alice)
    created = client.post("/api/v1/agents/", body(), format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["status"] == "draft" and data["current_version"] is None and data["is_active"] is False
    assert data["runtime_state"] == "offline" and data["has_unpublished_changes"] is True
    assert data["model_config"] == {
        "provider": "openai", "model": "gpt-4o-mini", "temperature": 0.3, "max_tokens": 4096, "top_p": None,
        "fallbacks": [], "extra": {}, "connection_id": None,
    }  # fmt: skip
    assert data["limits"]["max_runs_per_day"] == 500 and data["warnings"] == []
    assert data["stats"]["total_runs"] == 0 and data["stats"]["total_cost"] == "0.000000"
    url = f"/api/v1/agents/{data['id']}/"
    assert client.get(url).json()["name"] == "Support Bot"
    patched = client.patch(url, {"limits": {"max_steps_per_run": 4}, "visibility": "team"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["limits"]["max_steps_per_run"] == 4 and patched.json()["visibility"] == "team"
    assert_error(client.put(url, body(), format="json"), 405, "MethodNotAllowed")
    assert client.delete(url).status_code == 204
    assert_error(client.get(url), 404, "AgentNotFound")
    assert Agent.objects.filter(pk=data["id"]).exists()  # soft


def test_top_level_limits_are_accepted(alice, client_for):
    response = client_for(alice).post("/api/v1/agents/", body(max_steps_per_run=7, timeout_seconds=30), format="json")
    assert response.json()["limits"]["max_steps_per_run"] == 7 and response.json()["limits"]["timeout_seconds"] == 30


def test_duplicate_name_is_409(alice, make_agent, client_for, org):
    make_agent(alice)
    assert_error(
        client_for(alice).post("/api/v1/agents/", body(name="support bot"), format="json"), 409, "DuplicateAgentName"
    )
    assert Agent.objects.filter(organization=org).count() == 1


def test_publish_versions_compare_rollback(alice, make_agent, client_for):
    client = client_for(alice)
    agent = make_agent(alice)
    url = f"/api/v1/agents/{agent.pk}/"
    first = client.post(f"{url}publish/", {"changelog": "first"}, format="json")
    assert first.status_code == 201
    assert (first.json()["version"], first.json()["is_current"], first.json()["changelog"]) == ("1.0.0", True, "first")
    assert first.json()["config"]["system_prompt"] == agent.system_prompt
    assert client.get(url).json()["has_unpublished_changes"] is False
    client.patch(url, {"model_config": {"temperature": 0.8}}, format="json")
    assert client.get(url).json()["has_unpublished_changes"] is True
    second = client.post(f"{url}publish/", {"version": "1.5.0", "changelog": "warmer"}, format="json")
    assert second.json()["version"] == "1.5.0"
    versions = client.get(f"{url}versions/").json()
    assert versions["total"] == 2 and [v["version"] for v in versions["results"]] == ["1.5.0", "1.0.0"]
    assert "config" not in versions["results"][0]
    assert client.get(f"{url}versions/1.0.0/").json()["config"]["model_config"]["temperature"] == 0.3
    assert_error(client.get(f"{url}versions/7.0.0/"), 404, "NotFound")
    diff = client.get(f"{url}versions/compare/?from=1.0.0&to=1.5.0").json()
    assert diff["changes"] == [{"field": "model_config.temperature", "change": "changed", "from": 0.3, "to": 0.8}]
    assert_error(client.get(f"{url}versions/compare/?from=1.0.0"), 400, "InvalidInput")
    assert_error(client.get(f"{url}versions/compare/?from=1.0.0&to=8.0.0"), 404, "NotFound")
    rolled = client.post(f"{url}rollback/", {"version": "1.0.0"}, format="json")
    assert rolled.status_code == 200 and rolled.json()["is_current"] is True
    assert client.get(url).json()["current_version"] == "1.0.0"
    assert_error(client.post(f"{url}rollback/", {"version": "4.0.0"}, format="json"), 404, "NotFound")
    assert_error(client.post(f"{url}rollback/", {}, format="json"), 400, "InvalidInput")
    assert client.get(url).json()["current_version"] == "1.0.0"


def test_published_versions_cannot_be_edited_or_deleted(alice, published, client_for):
    client = client_for(alice)
    url = f"/api/v1/agents/{published.pk}/versions/1.0.0/"
    before = client.get(url).json()
    for method in ("patch", "put", "delete"):
        error = assert_error(
            getattr(client, method)(url, {"changelog": "rewritten"}, format="json"), 409, "VersionConflict"
        )
        assert error["details"] == {"version": "1.0.0"}
    assert client.get(url).json() == before
    assert_error(
        client.post(f"/api/v1/agents/{published.pk}/publish/", {"version": "1.0.0"}, format="json"),
        409,
        "VersionConflict",
    )
    assert_error(
        client.post(f"/api/v1/agents/{published.pk}/publish/", {"version": "one"}, format="json"), 400, "InvalidInput"
    )


def test_lifecycle_endpoints(alice, published, client_for):
    client = client_for(alice)
    url = f"/api/v1/agents/{published.pk}/"
    assert client.post(f"{url}activate/").json()["is_active"] is True
    assert client.get(url).json()["runtime_state"] == "idle"
    assert client.post(f"{url}deactivate/").json()["is_active"] is False
    assert client.post(f"{url}deprecate/").json()["status"] == "deprecated"
    assert_error(client.post(f"{url}deprecate/"), 409, "Conflict")
    assert_error(client.patch(url, {"system_prompt": "late change"}, format="json"), 409, "VersionConflict")
    archived = client.post(f"{url}archive/").json()
    assert (archived["status"], archived["is_active"], archived["runtime_state"]) == ("archived", False, "offline")
    assert_error(client.post(f"{url}activate/"), 409, "Conflict")
    assert_error(client.patch(url, {"description": "late"}, format="json"), 409, "VersionConflict")


def test_metrics_are_zero_until_runs_exist(alice, published, client_for):
    metrics = client_for(alice).get(f"/api/v1/agents/{published.pk}/metrics/").json()
    assert metrics["total_runs"] == 0 and metrics["success_rate"] == 0.0 and metrics["avg_cost"] == "0.000000"
    assert metrics["avg_response_time_ms"] == 0 and metrics["avg_tokens"] == 0.0
    assert metrics["goals"][0]["name"] == "Reliability" and metrics["goals"][0]["current_value"] is None


# --- list: filters, search, sort, pagination, query counts --------------------------------


@pytest.fixture
def catalogue(alice, make_agent):
    actor = actor_of(alice)
    a = make_agent(alice, name="Alpha", agent_type="analyst", domain="finance")
    b = make_agent(
        alice,
        name="Bravo",
        agent_type="guardian",
        model_config={"provider": "anthropic", "model": "claude-sonnet-4-20250514"},
    )
    c = make_agent(alice, name="Charlie", agent_type="analyst", description="Watches the churn numbers.")
    services.agent_publish(actor=actor, agent=b)
    services.agent_activate(actor=actor, agent=b)
    services.agent_publish(actor=actor, agent=c)
    services.agent_activate(actor=actor, agent=c)
    services.agent_stats_record_run(agent_id=c.pk, status="failed", started=False, error="x")
    return {"a": a, "b": b, "c": c}


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("status=draft&sort_by=name", ["Alpha"]),
        ("status=published&sort_by=name", ["Bravo", "Charlie"]),
        ("agent_type=analyst&sort_by=name", ["Alpha", "Charlie"]),
        ("provider=anthropic&sort_by=name", ["Bravo"]),
        ("is_active=true&sort_by=name", ["Bravo", "Charlie"]),
        ("is_active=false&sort_by=name", ["Alpha"]),
        ("runtime_state=error&sort_by=name", ["Charlie"]),
        ("runtime_state=idle&sort_by=name", ["Bravo"]),
        ("runtime_state=offline&sort_by=name", ["Alpha"]),
        ("search=churn&sort_by=name", ["Charlie"]),
        ("search=FINANCE&sort_by=name", ["Alpha"]),
        ("sort_by=name&sort_order=desc", ["Charlie", "Bravo", "Alpha"]),
        ("sort_by=name", ["Alpha", "Bravo", "Charlie"]),
        ("sort_by=created_at&sort_order=asc", ["Alpha", "Bravo", "Charlie"]),
    ],
)
def test_list_filters(query, names, alice, catalogue, client_for):
    response = client_for(alice).get(f"/api/v1/agents/?{query}")
    assert response.status_code == 200, response.content
    assert [row["name"] for row in response.json()["results"]] == names


def test_sort_by_stats_puts_nulls_and_ties_last(alice, catalogue, client_for):
    for query in ("sort_by=total_runs&sort_order=desc", "sort_by=last_run_at&sort_order=desc"):
        rows = client_for(alice).get(f"/api/v1/agents/?{query}").json()["results"]
        assert rows[0]["name"] == "Charlie", query
    rows = client_for(alice).get("/api/v1/agents/?sort_by=last_run_at&sort_order=asc").json()["results"]
    assert rows[0]["name"] == "Charlie"  # the only one that ran; never-run agents come after


@pytest.mark.parametrize(
    "query", ["status=alive", "sort_by=password", "sort_order=sideways", "runtime_state=asleep", "limit=-1"]
)
def test_bad_list_parameters_are_400(query, alice, client_for):
    assert_error(client_for(alice).get(f"/api/v1/agents/?{query}"), 400, "InvalidInput")


def test_pagination(alice, catalogue, client_for):
    page = client_for(alice).get("/api/v1/agents/?sort_by=name&limit=2&offset=1").json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [row["name"] for row in page["results"]] == ["Bravo", "Charlie"]


def _seed(org, users, count, start=0):
    for n in range(start, start + count):
        agent = AgentFactory(
            organization=org, created_by=users[n % len(users)], name=f"Seed {n:03d}", slug=f"seed-{n:03d}"
        )
        services.agent_publish(actor=None, agent=agent)


def test_list_query_count_does_not_grow_with_page_size(alice, org, client_for):
    users = [alice]
    for n in range(3):
        user = UserFactory(username=f"builder{n}@acme.test")
        MembershipFactory(user=user, organization=org, role="member")
        users.append(user)
    client = client_for(alice)
    _seed(org, users, 3)
    client.get("/api/v1/agents/")  # warm up: the token's first use is recorded once
    with CaptureQueriesContext(connection) as small:
        assert len(client.get("/api/v1/agents/?limit=3").json()["results"]) == 3
    _seed(org, users, 30, start=3)
    with CaptureQueriesContext(connection) as large:
        assert len(client.get("/api/v1/agents/?limit=33").json()["results"]) == 33
    assert len(large) == len(small), [q["sql"] for q in large.captured_queries]


def test_list_query_count_is_the_same_for_a_member(mia, org, client_for):
    client = client_for(mia)
    _seed(org, [mia], 2)
    client.get("/api/v1/agents/")  # warm up: the token's first use is recorded once
    with CaptureQueriesContext(connection) as small:
        client.get("/api/v1/agents/?limit=2")
    _seed(org, [mia], 20, start=2)
    with CaptureQueriesContext(connection) as large:
        assert len(client.get("/api/v1/agents/?limit=22").json()["results"]) == 22
    assert len(large) == len(small)


def test_statuses_are_kept_apart(alice, published, client_for):
    row = client_for(alice).get(f"/api/v1/agents/{published.pk}/").json()
    assert row["status"] in AgentStatus.values
    assert isinstance(row["is_active"], bool)
    assert row["runtime_state"] in ("idle", "busy", "error", "offline")
