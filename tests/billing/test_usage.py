"""Pricing, usage records and rollups, quotas and budgets, alerts, the usage API."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection

from bench.fakes.script import text, tool_call
from billing.models import Alert, DailyUsage, ModelPrice, Plan, UsagePeriod, UsageRecord
from billing.pricing import Price, call_cost, clear_price_cache, price_call
from billing.quotas import usage_period_current
from billing.usage import daily_usage_rebuild
from executions.models import Execution
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_prices():
    clear_price_cache()
    yield
    clear_price_cache()


def test_the_reference_figures_per_million():
    # GPT-4 $0.03/$0.06 per 1K, Claude 3 Opus $0.015/$0.075, Llama 3 70B on Groq $0.0008/$0.0008.
    assert call_cost(provider="openai", model="gpt-4", input_tokens=1000, output_tokens=1000) == Decimal("0.090000")
    assert call_cost(
        provider="anthropic", model="claude-3-opus-20240229", input_tokens=1000, output_tokens=1000
    ) == Decimal("0.090000")
    assert call_cost(provider="groq", model="llama3-70b-8192", input_tokens=1000, output_tokens=1000) == Decimal(
        "0.001600"
    )


def test_cached_input_is_priced_apart_and_arithmetic_is_decimal():
    price = Price(Decimal("2.50"), Decimal("10.00"), Decimal("1.25"))
    cost = price_call(price=price, input_tokens=1_000_000, output_tokens=3, cached_tokens=400_000)
    assert cost == Decimal("2.000030")  # 600k x 2.50 + 400k x 1.25 + 3 x 10.00, per million
    assert isinstance(cost, Decimal)


def test_an_edited_price_wins_and_unknown_models_are_flagged(db):
    ModelPrice.objects.create(provider="openai", model="gpt-4o", input_per_million=1, output_per_million=2)
    assert call_cost(provider="openai", model="gpt-4o", input_tokens=1_000_000, output_tokens=1_000_000) == Decimal("3")
    from billing.pricing import model_price

    unknown = model_price("openai", "gpt-unheard-of")
    assert unknown.is_default and unknown.input == Decimal("10")


def test_usage_records_and_rollups_equal_their_sums(org, make_agent, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"])
    for i in range(3):
        providers_at_fake.script(tool_call("echo", {"text": str(i)}), text("ok"))
        execution, _ = execution_start(agent=agent, organization=org, task=f"t{i}")
        run_execution(execution.pk)
    records = UsageRecord.objects.filter(organization=org)
    assert records.count() == 6
    executions = Execution.objects.filter(organization=org)
    assert sum(e.cost for e in executions) == sum(r.cost for r in records)
    rollup = DailyUsage.objects.get(organization=org, provider="openai")
    assert rollup.llm_calls == 6
    # Tool calls are counted on the agent's row without a provider or model.
    assert DailyUsage.objects.get(organization=org, provider="").tool_calls == 3
    assert rollup.tokens_input == sum(r.tokens_input for r in records)
    assert rollup.cost == sum(r.cost for r in records)
    columns = ("date", "provider", "model", "llm_calls", "tokens_input", "cost", "tool_calls")
    before = list(DailyUsage.objects.order_by("provider").values_list(*columns))
    daily_usage_rebuild(organization_id=org.pk)
    after = list(DailyUsage.objects.order_by("provider").values_list(*columns))
    assert before == after
    period = usage_period_current(org)
    assert period.runs_used == 3
    assert period.tokens_used == sum(r.tokens_input + r.tokens_output for r in records)


def test_quota_is_exact_under_50_concurrent_requests(org, alice, make_agent, client_for):
    plan = Plan.objects.create(slug="tiny", name="Tiny", included_runs=12, included_tokens=10**9, allow_overage=False)
    org.plan = plan
    org.save()
    agent = make_agent(limits={"max_runs_per_hour": 1000, "max_runs_per_day": 1000})
    # Two runs already used this period: 10 remain.
    execution_start(agent=agent, organization=org, task="a")
    execution_start(agent=agent, organization=org, task="b")
    api = client_for(alice)
    token = api.raw_token
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def hit() -> None:
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        barrier.wait()
        try:
            response = client.post(f"/api/v1/agents/{agent.id}/execute/", {"task": "go"}, format="json")
            with lock:
                statuses.append(response.status_code)
                if response.status_code == 429:
                    assert response.json()["error"]["code"] == "ResourceExhausted"
        finally:
            connection.close()

    threads = [threading.Thread(target=hit) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses.count(202) == 10 and statuses.count(429) == 40
    assert Execution.objects.filter(organization=org).count() == 12
    assert usage_period_current(org).runs_used == 12


def test_budget_cap_refuses_new_runs_and_stops_a_run_between_steps(org, make_agent, providers_at_fake, echo_tool):
    from config.api.errors import ApiError

    org.daily_budget_usd = Decimal("0.02")
    org.save()
    # An expensive model: each call of the fake (~100 tokens) costs about a cent.
    ModelPrice.objects.create(provider="openai", model="gpt-4o", input_per_million=100, output_per_million=100)
    agent = make_agent(allowed_tools=["echo"], limits={"max_steps_per_run": 10})
    providers_at_fake.script(*[tool_call("echo", {"text": str(i)}) for i in range(5)])
    execution, _ = execution_start(agent=agent, organization=org, task="spend")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "failed" and execution.error_code == "ResourceExhausted"
    calls = execution.llm_calls
    assert calls >= 1 and execution.cost >= org.daily_budget_usd
    assert len(providers_at_fake.chat_requests) == calls  # no call after the cap
    with pytest.raises(ApiError) as excinfo:
        execution_start(agent=agent, organization=org, task="more")
    assert excinfo.value.code == "ResourceExhausted"
    assert "daily_budget_usd" in excinfo.value.details["resource_usage"]
    # Admins heard about it, once per threshold.
    kinds = set(Alert.objects.filter(organization=org).values_list("kind", "threshold"))
    assert ("budget_daily", 100) in kinds and ("budget_daily", 80) in kinds


def test_quota_alerts_at_80_and_100_percent(org, alice, make_agent):
    plan = Plan.objects.create(slug="five", name="Five", included_runs=5, included_tokens=10**9, allow_overage=True)
    org.plan = plan
    org.save()
    agent = make_agent()
    for i in range(6):
        execution_start(agent=agent, organization=org, task=str(i))
    alerts = Alert.objects.filter(organization=org, kind="quota_runs").order_by("threshold")
    assert [a.threshold for a in alerts] == [80, 100]
    assert usage_period_current(org).overage_runs == 1  # overage counted, not refused
    assert any("80%" in m.subject for m in mail.outbox) and alice.email in mail.outbox[0].to


def test_usage_api_groups_ranges_csv_and_tenancy(org, alice, vic, oscar, make_agent, client_for, providers_at_fake):
    agent = make_agent()
    providers_at_fake.script(text("a"), text("b"))
    for task in ("one", "two"):
        execution, _ = execution_start(agent=agent, organization=org, task=task)
        run_execution(execution.pk)
    api = client_for(alice)
    by_day = api.get("/api/v1/usage/?group_by=day").json()
    assert len(by_day["results"]) == 1 and by_day["results"][0]["runs"] == 2 and by_day["results"][0]["llm_calls"] == 2
    by_agent = api.get("/api/v1/usage/?group_by=agent").json()["results"]
    assert by_agent[0]["key"] == str(agent.id)
    by_model = api.get("/api/v1/usage/?group_by=model").json()["results"]
    assert by_model[0]["key"] == "gpt-4o" and Decimal(by_model[0]["cost"]) > 0
    by_user = api.get("/api/v1/usage/?group_by=user").json()["results"]
    assert by_user[0]["runs"] == 2
    csv_response = api.get("/api/v1/usage/?group_by=model&format=csv")
    assert csv_response["Content-Type"] == "text/csv"
    assert csv_response.content.decode().splitlines()[0].startswith("model,runs,llm_calls")
    quota = api.get("/api/v1/usage/quota/").json()
    assert quota["runs"]["used"] == 2 and quota["plan"]["slug"] == "standard"
    # Bad input.
    assert_error(api.get("/api/v1/usage/?group_by=galaxy"), 400, "InvalidInput")
    assert_error(api.get("/api/v1/usage/?from=2026-02-01&to=2026-01-01"), 400, "InvalidInput")
    assert_error(api.get("/api/v1/usage/?from=yesterday"), 400, "InvalidInput")
    assert_error(api.get("/api/v1/usage/?from=2020-01-01&to=2026-01-01"), 400, "InvalidInput")
    # Scopes and tenancy: viewers may read usage; another organization sees none of it.
    assert client_for(vic).get("/api/v1/usage/").status_code == 200
    assert_error(client_for(alice, scopes=["agents:read"]).get("/api/v1/usage/"), 403, "AgentAccessDenied")
    assert client_for(oscar).get("/api/v1/usage/?group_by=day").json()["results"] == []
    assert client_for(oscar).get("/api/v1/usage/quota/").json()["runs"]["used"] == 0


def test_negative_prices_and_caps_are_refused(db):
    from django.core.exceptions import ValidationError

    price = ModelPrice(provider="openai", model="x", input_per_million=Decimal("-1"), output_per_million=1)
    with pytest.raises(ValidationError):
        price.full_clean()
    from tests.factories import OrganizationFactory

    organization = OrganizationFactory.build(daily_budget_usd=Decimal("-5"))
    with pytest.raises(ValidationError):
        organization.full_clean()


def test_failure_spike_and_stuck_run_alerts(org, make_agent):
    from datetime import timedelta

    from django.utils import timezone

    from executions.alerts import alerts_scan

    agent = make_agent(limits={"max_runs_per_hour": 100})
    now = timezone.now()
    for i in range(6):
        execution, _ = execution_start(agent=agent, organization=org, task=str(i))
        Execution.objects.filter(pk=execution.pk).update(status="failed" if i < 4 else "completed", completed_at=now)
    stuck, _ = execution_start(agent=agent, organization=org, task="stuck")
    Execution.objects.filter(pk=stuck.pk).update(status="running", deadline_at=now - timedelta(minutes=10))
    assert alerts_scan() == 2
    assert alerts_scan() == 0  # once per hour, not on every scan
    assert set(Alert.objects.values_list("kind", flat=True)) == {"failure_spike", "stuck_runs"}
    assert UsagePeriod.objects.filter(organization=org).exists()


def test_admin_usage_page_and_price_edit(org, make_agent, providers_at_fake, client, django_user_model):
    agent = make_agent()
    providers_at_fake.script(text("x"))
    execution, _ = execution_start(agent=agent, organization=org, task="t")
    run_execution(execution.pk)
    root = django_user_model.objects.create_superuser("root", "r@example.test", "pw")
    client.force_login(root)
    page = client.get(f"/admin/accounts/organization/{org.pk}/usage/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "<polyline" in html and agent.name in html and "gpt-4o" in html
    for url in ("/admin/billing/modelprice/", "/admin/billing/plan/", "/admin/billing/dailyusage/",
                "/admin/billing/usagerecord/", "/admin/billing/usageperiod/", "/admin/billing/alert/"):  # fmt: skip
        assert client.get(url).status_code == 200, url
