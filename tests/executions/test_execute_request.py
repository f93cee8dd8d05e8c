"""The execute request's hot path: its queries pinned, the cached token (and how a revocation
or a role change still takes effect on the very next request), the per-agent run counters
(fixed UTC windows, exact under concurrency), the plain execution serializer."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from accounts.models import ApiToken, Membership
from accounts.services import api_token_revoke
from executions.api.serializers import ExecutionSerializer
from executions.models import AgentRunWindow, Execution
from executions.services import execution_start
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def _execute(api, agent, **body):
    return api.post(f"/api/v1/agents/{agent.pk}/execute/", {"task": "go", **body}, format="json")


def test_execute_queries_are_pinned(org, alice, make_agent, client_for, django_assert_num_queries):
    agent = make_agent(limits={"max_runs_per_hour": 100, "max_runs_per_day": 100})
    api = client_for(alice)
    assert _execute(api, agent).status_code == 202  # the token is cached, the window row made
    # The agent; its run windows counted (one UPDATE); the usage period locked and read; the
    # plan; the period counted; the execution; the activity row; and the test's savepoint
    # around the service's transaction (BEGIN/COMMIT outside tests). No token, membership,
    # grant or COUNT(*) query.
    with django_assert_num_queries(9) as captured:
        assert _execute(api, agent).status_code == 202
    sql = [q["sql"] for q in captured.captured_queries]
    assert not [q for q in sql if 'FROM "billing_apitoken"' in q or 'FROM "billing_membership"' in q]
    assert not [q for q in sql if "COUNT(" in q.upper() or "agentuserobjectpermission" in q]


def test_a_revoked_token_fails_on_the_next_request(org, alice, make_agent, client_for):
    agent = make_agent()
    api = client_for(alice)
    assert _execute(api, agent).status_code == 202
    with CaptureQueriesContext(connection) as captured:
        assert api.get("/api/v1/agents/").status_code == 200
    assert not any('FROM "billing_apitoken"' in q["sql"] for q in captured.captured_queries), "token not cached"
    token = ApiToken.objects.get(prefix=api.raw_token[:12])
    api_token_revoke(token=token)
    assert_error(_execute(api, agent), 401, "TokenRevoked")
    assert Execution.objects.count() == 1


def test_role_change_and_deactivation_apply_on_the_next_request(org, alice, mia, make_agent, client_for):
    agent = make_agent()
    api = client_for(mia)
    assert _execute(api, agent).status_code == 202
    membership = Membership.objects.get(user=mia, organization=org)
    membership.role = "viewer"
    membership.save()
    assert_error(_execute(api, agent), 403, "InsufficientPermissions")
    membership.role = "member"
    membership.save()
    assert _execute(api, agent).status_code == 202
    mia.is_active = False
    mia.save()
    assert_error(_execute(api, agent), 401, "InvalidToken")


def test_cache_outage_falls_back_to_the_database(org, alice, make_agent, client_for, monkeypatch):
    from django.core.cache import cache

    agent = make_agent()
    api = client_for(alice)

    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(cache, "get_many", down)
    assert _execute(api, agent).status_code == 202


def test_hourly_limit_counts_in_the_current_utc_hour(org, make_agent):
    from config.api.errors import ApiError

    agent = make_agent(limits={"max_runs_per_hour": 2, "max_runs_per_day": 100})
    execution_start(agent=agent, organization=org, task="1")
    execution_start(agent=agent, organization=org, task="2")
    with pytest.raises(ApiError) as refused:
        execution_start(agent=agent, organization=org, task="3")
    assert refused.value.details["resource_usage"] == {"max_runs_per_hour": 2, "used": 2}
    window = AgentRunWindow.objects.get(agent=agent)
    assert (window.hour_runs, window.day_runs) == (2, 2), "a refused start is not counted"
    # The clock moves into the next hour: the hour's count starts again, the day's goes on.
    AgentRunWindow.objects.filter(agent=agent).update(hour_start=window.hour_start - timedelta(hours=1))
    execution_start(agent=agent, organization=org, task="4")
    window.refresh_from_db()
    assert (window.hour_runs, window.day_runs) == (1, 3)
    assert window.hour_start == timezone.now().replace(minute=0, second=0, microsecond=0)


def test_daily_limit_and_a_new_day(org, make_agent):
    from config.api.errors import ApiError

    agent = make_agent(limits={"max_runs_per_hour": 100, "max_runs_per_day": 1})
    execution_start(agent=agent, organization=org, task="1")
    with pytest.raises(ApiError) as refused:
        execution_start(agent=agent, organization=org, task="2")
    assert refused.value.details["resource_usage"] == {"max_runs_per_day": 1, "used": 1}
    yesterday = timezone.now().date() - timedelta(days=1)
    AgentRunWindow.objects.filter(agent=agent).update(day_start=yesterday)
    execution_start(agent=agent, organization=org, task="3")
    assert AgentRunWindow.objects.get(agent=agent).day_runs == 1


def test_an_agent_without_counters_is_counted_from_its_runs(org, make_agent):
    """Agents that ran before the counters existed keep their limits: the first start counts
    the runs already in the windows."""
    from config.api.errors import ApiError

    agent = make_agent(limits={"max_runs_per_hour": 3, "max_runs_per_day": 100})
    for i in range(3):
        execution_start(agent=agent, organization=org, task=str(i))
    # An older run (yesterday) counts in neither window.
    Execution.objects.filter(pk=Execution.objects.filter(agent=agent).first().pk).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    AgentRunWindow.objects.filter(agent=agent).delete()
    execution_start(agent=agent, organization=org, task="3")
    window = AgentRunWindow.objects.get(agent=agent)
    assert (window.hour_runs, window.day_runs) == (3, 3)
    with pytest.raises(ApiError):
        execution_start(agent=agent, organization=org, task="4")


@pytest.mark.django_db(transaction=True)
def test_hourly_limit_is_exact_under_concurrent_requests(org, alice, make_agent, client_for):
    agent = make_agent(limits={"max_runs_per_hour": 7, "max_runs_per_day": 1000})
    token = client_for(alice).raw_token
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def hit() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        barrier.wait()
        try:
            response = _execute(client, agent)
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [202] * 7 + [429] * 13
    assert Execution.objects.filter(agent=agent).count() == 7
    assert AgentRunWindow.objects.get(agent=agent).hour_runs == 7


def _generic(execution: Execution) -> bytes:
    serializer = ExecutionSerializer(execution)
    return JSONRenderer().render(serializers.ModelSerializer.to_representation(serializer, execution))


def test_plain_serializer_writes_what_the_generic_one_did(org, alice, make_agent):
    agent = make_agent(limits={"max_runs_per_hour": 100, "max_runs_per_day": 100})
    parent, _ = execution_start(agent=agent, organization=org, task="parent")
    child, _ = execution_start(
        agent=agent, organization=org, task="child", parent=parent, conversation_id=uuid.uuid4(), max_tokens=50
    )
    Execution.objects.filter(pk=child.pk).update(
        status="completed",
        output={"answer": [1, "two", None]},
        result_text="done ✓",
        actions_taken=[{"tool": "lookup"}],
        error_details={"x": 1},
        tokens_input=12,
        tokens_output=3,
        tokens_total=15,
        cost="0.0012345",
        started_at=timezone.now() - timedelta(seconds=2),
        completed_at=timezone.now(),
        duration_ms=2000,
        wait_until=timezone.now() + timedelta(minutes=5),
        warnings=["deprecated"],
        triggered_by_user=alice,
    )
    draft_run, _ = execution_start(agent=agent, organization=org, task="draft", draft=True)
    runs = Execution.objects.filter(pk__in=[parent.pk, child.pk, draft_run.pk]).select_related("agent_version")
    assert any(e.agent_version_id is None for e in runs)
    for execution in runs:
        fast = JSONRenderer().render(ExecutionSerializer(execution).data)
        assert json.loads(fast) == json.loads(_generic(execution))
        assert list(json.loads(fast)) == list(json.loads(_generic(execution)))  # the same key order


def test_execution_list_filters_still_apply_and_refuse(org, alice, make_agent, client_for):
    """The filter backend's shortcut (no filter parameter: the filter set is not built) leaves
    filtering, ordering and the 400s of bad filter values as they were."""
    agent = make_agent(limits={"max_runs_per_hour": 100, "max_runs_per_day": 100})
    other = make_agent(name="Other", limits={"max_runs_per_hour": 100, "max_runs_per_day": 100})
    for i in range(3):
        execution_start(agent=agent, organization=org, task=str(i))
    execution_start(agent=other, organization=org, task="x")
    api = client_for(alice)
    everything = api.get("/api/v1/executions/").json()
    assert everything["total"] == 4
    assert [r["created_at"] for r in everything["results"]] == sorted(
        (r["created_at"] for r in everything["results"]), reverse=True
    )
    assert api.get(f"/api/v1/executions/?agent={other.pk}").json()["total"] == 1
    assert api.get("/api/v1/executions/?status=completed").json()["total"] == 0
    assert_error(api.get("/api/v1/executions/?status=nonsense"), 400, "InvalidInput")
    assert_error(api.get("/api/v1/executions/?from=yesterday"), 400, "InvalidInput")
    assert api.get("/api/v1/executions/?unrelated=1").json()["total"] == 4
