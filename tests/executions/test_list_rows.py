"""The executions lists write plain rows (executions.api.serializers.execution_list_data):
byte for byte what ExecutionSerializer writes by DRF's generic path, for every kind of run, on both lists, with
their filters, orders and pages."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from executions.api.serializers import ExecutionSerializer, execution_list_data, execution_list_rows
from executions.models import Execution, ExecutionStatus, TriggerType
from executions.services import execution_start

pytestmark = pytest.mark.django_db

LIMITS = {"max_runs_per_hour": 500, "max_runs_per_day": 500}


def _written(execution: Execution) -> dict:
    """What ExecutionSerializer writes, by DRF's generic path (a bound field per column): the
    reference, independent of the plain mapping the serializer and the rows share."""
    return serializers.ModelSerializer.to_representation(ExecutionSerializer(execution), execution)


def _render(data) -> bytes:
    return JSONRenderer().render(data)


@pytest.fixture
def runs(org, alice, make_agent):
    """Runs covering every field's variants: each status, nulls and empties, a draft run, a
    failed run with its error, a child with a conversation, JSON that the encoder escapes
    or writes in its own way (U+2028, control characters, 1e-07, integers past 64 bits)."""
    agent = make_agent(limits=LIMITS)
    other = make_agent(name="Other", limits=LIMITS)
    now = timezone.now()
    made = []
    for i, status in enumerate(ExecutionStatus.values):
        run, _ = execution_start(agent=agent if i % 2 else other, organization=org, task=f"task {status}")
        made.append(run)
        fields: dict = {"status": status, "created_at": now - timedelta(minutes=i)}
        if status == ExecutionStatus.COMPLETED:
            fields.update(
                output={"text": "fini ✓ \u2028 \u2029 \x01", "n": [1, 2.5, 1e-07, 10**30, None, True]},
                result_text="fini ✓",
                actions_taken=[{"tool": "lookup", "ok": True}],
                tokens_input=12,
                tokens_output=3,
                tokens_total=15,
                llm_calls=2,
                tool_calls=1,
                cost=Decimal("0.001234"),
                started_at=now - timedelta(seconds=3, microseconds=1),
                completed_at=now.replace(microsecond=0),
                duration_ms=2999,
                cpu_time_ms=7,
                memory_peak_mb=12,
                api_calls_count=3,
                triggered_by_user=alice,
            )
        elif status in (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT):
            fields.update(
                error="The provider failed.",
                error_code="ExecutionFailed",
                error_details={"provider": "openai", "retryable": False},
                retry_count=2,
                warnings=["deprecated model"],
                started_at=now,
                completed_at=now,
            )
        elif status in (ExecutionStatus.WAITING, ExecutionStatus.WAITING_APPROVAL):
            fields.update(wait_until=now + timedelta(hours=1), cancel_requested=True)
        Execution.objects.filter(pk=run.pk).update(**fields)
    child, _ = execution_start(
        agent=agent,
        organization=org,
        task="child",
        parent=made[0],
        conversation_id=uuid.uuid4(),
        max_tokens=50,
        context={"deep": {"list": [{"a": "é"}]}},
    )
    Execution.objects.filter(pk=child.pk).update(
        trigger_type=TriggerType.WEBHOOK, trigger_data={"event": "x"}, cost=Decimal("12.5")
    )
    draft, _ = execution_start(agent=agent, organization=org, task="draft", draft=True)
    return {"agent": agent, "other": other, "draft": draft, "child": child}


def test_rows_write_what_the_serializer_writes(runs):
    queryset = Execution.objects.select_related("agent_version").order_by("-created_at", "id")
    assert queryset.filter(agent_version__isnull=True).exists()  # a draft run is among them
    assert queryset.filter(status=ExecutionStatus.FAILED).exclude(error="").exists()
    serialized = [_written(e) for e in queryset]
    rows = execution_list_data(execution_list_rows(queryset, 0, 100))
    assert len(rows) == len(serialized) == len(ExecutionStatus.values) + 2
    for row, expected in zip(rows, serialized, strict=True):
        assert _render(row) == _render(expected)  # byte for byte, key order included


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?limit=3",
        "?limit=3&offset=3",
        "?limit=4&offset=9",
        "?offset=500",
        "?status=failed",
        "?status=completed&status=failed",
        "?trigger_type=webhook",
        "?sort_by=cost",
        "?sort_by=-duration_ms&limit=5",
        "?from=2000-01-01T00:00:00Z",
        "?to=2000-01-01T00:00:00Z",
    ],
)
def test_the_list_answers_what_the_serializer_wrote(query, runs, alice, client_for):
    """The response, byte for byte, is the page the serializer wrote over the same rows."""
    api = client_for(alice)
    response = api.get(f"/api/v1/executions/{query}")
    body = response.json()
    ids = [r["id"] for r in body["results"]]
    by_id = {str(e.pk): e for e in Execution.objects.select_related("agent_version").filter(pk__in=ids)}
    expected = {
        "results": [_written(by_id[i]) for i in ids],
        "total": _count(query),
        "limit": body["limit"],
        "offset": body["offset"],
    }
    assert response.content == _render(expected)
    if "sort_by" not in query:
        assert [r["created_at"] for r in body["results"]] == sorted(
            (r["created_at"] for r in body["results"]), reverse=True
        )


def _reparsed(data):
    return json.loads(_render(data))


def _count(query: str) -> int:
    qs = Execution.objects.all()
    if "status=failed" in query:
        qs = qs.filter(status__in=["failed", "completed"] if "completed" in query else ["failed"])
    if "trigger_type=webhook" in query:
        qs = qs.filter(trigger_type="webhook")
    if "to=2000" in query:
        qs = qs.none()
    return qs.count()


def test_the_agents_runs_list_writes_the_same_rows(runs, alice, client_for):
    agent = runs["agent"]
    body = client_for(alice).get(f"/api/v1/agents/{agent.pk}/executions/?status=completed&status=pending").json()
    expected = Execution.objects.select_related("agent_version").filter(
        agent=agent, status__in=["completed", "pending"]
    )
    assert body["total"] == expected.count() > 0
    by_id = {str(e.pk): e for e in expected}
    assert {r["id"] for r in body["results"]} == set(by_id)
    for row in body["results"]:
        assert row == _reparsed(_written(by_id[row["id"]]))


def test_a_member_sees_the_same_rows_as_before(runs, org, mia, client_for):
    """The member's list (a subquery on the agents they may see) keeps its filter."""
    body = client_for(mia).get("/api/v1/executions/").json()
    visible = Execution.objects.filter(pk__in=[r["id"] for r in body["results"]])
    assert body["total"] == visible.count() == len(body["results"])


def test_a_page_that_is_not_full_is_not_counted(runs, alice, client_for):
    """A short page tells the total; a full one (or an empty one past the start) counts."""
    api = client_for(alice)
    total = Execution.objects.count()
    api.get("/api/v1/executions/?limit=1")  # warm the token's last_used_at write
    with CaptureQueriesContext(connection) as short:
        assert api.get(f"/api/v1/executions/?limit={total + 5}").json()["total"] == total
    with CaptureQueriesContext(connection) as tail:
        assert api.get(f"/api/v1/executions/?limit=4&offset={total - 2}").json()["total"] == total
    with CaptureQueriesContext(connection) as full:
        assert api.get("/api/v1/executions/?limit=2").json()["total"] == total
    with CaptureQueriesContext(connection) as past:
        body = api.get(f"/api/v1/executions/?offset={total + 10}").json()
    assert body == {"results": [], "total": total, "limit": 50, "offset": total + 10}
    counts = [q for q in full.captured_queries if "COUNT(*)" in q["sql"]]
    assert len(counts) == 1 and "JOIN" not in counts[0]["sql"]  # counted without the version's join
    assert not any("COUNT(*)" in q["sql"] for q in short.captured_queries + tail.captured_queries)
    assert any("COUNT(*)" in q["sql"] for q in past.captured_queries)
    assert len(short) == len(tail) == len(full) - 1


@pytest.mark.parametrize("path", ["/api/v1/executions/", "/api/v1/agents/", "/api/v1/agents/{agent}/executions/"])
def test_an_offset_past_postgresqls_bigint_is_an_empty_page(path, runs, alice, client_for):
    """The page is read before the count now: an offset PostgreSQL's OFFSET refuses is
    still an empty page with the total, as when the count came first."""
    response = client_for(alice).get(path.format(agent=runs["agent"].pk), {"offset": 10**20})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["results"] == [] and body["total"] > 0 and body["offset"] == 10**20
