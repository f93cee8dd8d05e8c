"""/metrics: who may scrape it, and series whose values match the rows the test wrote."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from approvals.models import ApprovalRequest
from billing.models import UsageRecord
from executions.models import Execution, ExecutionStep, StepStatus, StepType
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def samples(body: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(series: dict, name: str, **labels) -> float:
    return series[(name, frozenset(labels.items()))]


@pytest.fixture
def rows(org, other_org, make_agent):
    agent = make_agent(name="Metered")
    now = timezone.now()

    def run(status: str, started: bool = True) -> Execution:
        return Execution.objects.create(
            organization=org,
            agent=agent,
            agent_version=agent.current_version,
            input={"task": "t"},
            status=status,
            started_at=now if started else None,
        )

    done = run("completed")
    run("completed")
    run("failed")
    run("pending", started=False)
    waiting = run("waiting_approval")

    def step(n: int, step_type: str, ms: int, provider: str = "", status: str = StepStatus.COMPLETED, **kw):
        return ExecutionStep.objects.create(
            execution=done, step_number=n, step_type=step_type, provider=provider, status=status,
            started_at=now, duration_ms=ms, **kw,
        )  # fmt: skip

    step(1, StepType.THINK, 300, provider="openai", model="gpt-4o-mini")  # <= 0.5 s
    step(2, StepType.THINK, 4000, provider="openai", model="gpt-4o-mini")  # <= 5 s
    step(3, StepType.ACT, 20, tool_name="echo")
    step(4, StepType.ACT, 30, tool_name="echo", status=StepStatus.FAILED)
    # Outside the 24 h window: counted as a tool call, not in the histogram.
    old = step(5, StepType.THINK, 100, provider="openai")
    ExecutionStep.objects.filter(pk=old.pk).update(started_at=now - timedelta(days=2))

    UsageRecord.objects.create(
        organization=org, provider="openai", model="gpt-4o-mini", tokens_input=100, tokens_output=20,
        tokens_cached=5, cost=Decimal("0.0125"),
    )  # fmt: skip
    UsageRecord.objects.create(  # an answer of the offline sandbox: tokens, no model call
        organization=org, provider="sandbox", model="sandbox-echo", tokens_input=9, tokens_output=3, cost=Decimal(0),
    )  # fmt: skip
    UsageRecord.objects.create(
        organization=org, provider="openai", model="gpt-4o-mini", tokens_input=50, tokens_output=10,
        cost=Decimal("0.0075"),
    )  # fmt: skip
    # Another tenant's usage: only platform-wide scrapes see it.
    UsageRecord.objects.create(
        organization=other_org, provider="anthropic", model="claude-x", tokens_input=7, cost=Decimal("1")
    )
    ApprovalRequest.objects.create(
        organization=org, execution=waiting, agent=agent, step_number=1, action_type="echo",
        action_description="echo", expires_at=now + timedelta(hours=1),
    )  # fmt: skip
    return agent


def test_metrics_need_authentication(client):
    assert_error(client.get("/metrics"), 401, "NotAuthenticated")
    bad = Client(HTTP_AUTHORIZATION="Bearer agt_nope")
    assert_error(bad.get("/metrics"), 401, "InvalidToken")


def test_metrics_refuse_tokens_without_admin_scope_and_plain_members(client_for, alice, mia, client):
    token = client_for(alice, scopes=["agents:read"]).raw_token
    assert_error(Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/metrics"), 403, "AgentAccessDenied")
    client.force_login(mia)  # a member, not staff
    assert_error(client.get("/metrics"), 403, "InsufficientPermissions")


def test_metrics_token_setting_is_compared_and_sees_all_organizations(settings, rows):
    settings.METRICS_TOKEN = "scrape-secret-123"
    assert_error(Client(HTTP_AUTHORIZATION="Bearer scrape-secret-12").get("/metrics"), 401, "InvalidToken")
    response = Client(HTTP_AUTHORIZATION="Bearer scrape-secret-123").get("/metrics")
    assert response.status_code == 200
    series = samples(response.content.decode())
    assert value(series, "agentry_tokens_total", provider="anthropic", model="claude-x", direction="input") == 7


def test_metrics_values_match_rows_for_an_admin_token(client_for, alice, rows):
    token = client_for(alice, scopes=["admin"]).raw_token
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    series = samples(response.content.decode())

    assert value(series, "agentry_executions_finished_total", status="completed") == 2
    assert value(series, "agentry_executions_finished_total", status="failed") == 1
    assert value(series, "agentry_executions_started_total", status="completed") == 2
    assert value(series, "agentry_executions_active", status="pending") == 1
    assert value(series, "agentry_executions_active", status="waiting_approval") == 1
    assert ("agentry_executions_started_total", frozenset({("status", "pending")})) in series
    assert value(series, "agentry_executions_started_total", status="pending") == 0

    assert value(series, "agentry_llm_calls_total", provider="openai", model="gpt-4o-mini") == 2
    assert value(series, "agentry_llm_calls_total", provider="sandbox", model="sandbox-echo") == 0
    assert value(series, "agentry_tokens_total", provider="sandbox", model="sandbox-echo", direction="input") == 9
    assert value(series, "agentry_tokens_total", provider="openai", model="gpt-4o-mini", direction="input") == 150
    assert value(series, "agentry_tokens_total", provider="openai", model="gpt-4o-mini", direction="output") == 30
    assert value(series, "agentry_tokens_total", provider="openai", model="gpt-4o-mini", direction="cached") == 5
    assert value(series, "agentry_cost_usd_total", provider="openai", model="gpt-4o-mini") == pytest.approx(0.02)
    # The other organization's usage is not in an organization token's scrape.
    assert not any(labels and ("provider", "anthropic") in labels for _, labels in series)

    assert value(series, "agentry_tool_calls_total", status="completed") == 1
    assert value(series, "agentry_tool_calls_total", status="failed") == 1
    assert value(series, "agentry_approvals_pending") == 1

    llm = "agentry_llm_latency_seconds"
    assert value(series, f"{llm}_count", provider="openai") == 2  # the 2-day-old step is out of the window
    assert value(series, f"{llm}_sum", provider="openai") == pytest.approx(4.3)
    assert value(series, f"{llm}_bucket", provider="openai", le="0.25") == 0
    assert value(series, f"{llm}_bucket", provider="openai", le="0.5") == 1
    assert value(series, f"{llm}_bucket", provider="openai", le="5.0") == 2
    assert value(series, f"{llm}_bucket", provider="openai", le="+Inf") == 2
    step = "agentry_step_duration_seconds"
    assert value(series, f"{step}_count", step_type="act", provider="none") == 2
    assert value(series, f"{step}_bucket", step_type="act", provider="none", le="0.05") == 2

    assert value(series, "agentry_broker_up") == 1
    assert value(series, "agentry_queue_depth", queue="default") >= 0
    assert ("agentry_queue_depth", frozenset({("queue", "io")})) in series


def test_metrics_queue_depth_reads_the_celery_lists(settings, rows):
    from redis import Redis

    settings.METRICS_TOKEN = "scrape-secret-123"
    redis = Redis.from_url(settings.CELERY_BROKER_URL)
    redis.delete("io")
    redis.rpush("io", "m1", "m2", "m3")
    try:
        body = Client(HTTP_AUTHORIZATION="Bearer scrape-secret-123").get("/metrics").content.decode()
    finally:
        redis.delete("io")
    assert value(samples(body), "agentry_queue_depth", queue="io") == 3


def test_metrics_for_staff_sessions(client, adam, oscar, rows, django_user_model):
    adam.is_staff = True
    adam.save(update_fields=["is_staff"])
    client.force_login(adam)
    series = samples(client.get("/metrics").content.decode())
    assert value(series, "agentry_approvals_pending") == 1
    assert not any(("provider", "anthropic") in labels for _, labels in series)

    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(root)
    series = samples(client.get("/metrics/").content.decode())
    assert value(series, "agentry_tokens_total", provider="anthropic", model="claude-x", direction="input") == 7
