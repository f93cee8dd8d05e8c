"""Two organizations with real runs, usage, an approval and a failing agent each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.access import Actor
from accounts.models import Membership, Organization
from agents.models import Agent
from agents.services.agents import agent_create
from agents.services.versions import agent_publish
from approvals.models import ApprovalRequest
from billing.models import DailyUsage
from executions.models import Execution
from executions.runtime.loop import run_execution
from executions.services import execution_start


@dataclass
class Tenant:
    organization: Organization
    agent: Agent
    failing: Agent
    execution: Execution
    approval: ApprovalRequest


def _tenant(organization: Organization, user, *, runs: int, cost: str, prefix: str) -> Tenant:
    actor = Actor(
        organization=organization, user=user, membership=Membership.objects.get(user=user, organization=organization)
    )

    def agent(name: str) -> Agent:
        made = agent_create(
            actor=actor,
            data={
                "name": name,
                "system_prompt": "Test.",
                "model_config": {"provider": "sandbox", "model": "sandbox-echo"},
            },
        )
        agent_publish(actor=actor, agent=made)
        made.refresh_from_db()
        return made

    good, failing = agent(f"{prefix} good"), agent(f"{prefix} failing")
    executions = []
    for i in range(runs):
        execution, _ = execution_start(agent=good, organization=organization, task=f"task {i}")
        run_execution(execution.pk)
        executions.append(execution)
    Agent.objects.filter(pk=failing.pk).update(last_run_status="failed", last_run_at=timezone.now())
    waiting, _ = execution_start(agent=good, organization=organization, task="needs a person")
    Execution.objects.filter(pk=waiting.pk).update(status="waiting_approval")
    approval = ApprovalRequest.objects.create(
        organization=organization, execution=waiting, agent=good, step_number=1, action_type=f"{prefix}_action",
        action_description="do it", expires_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    ApprovalRequest.objects.filter(pk=approval.pk).update(created_at=timezone.now() - timedelta(hours=2))
    DailyUsage.objects.create(
        organization=organization, date=timezone.now().date(), provider="openai", model="m", cost=Decimal(cost)
    )
    return Tenant(organization, good, failing, executions[0], approval)


@pytest.fixture
def tenants(org, other_org, alice, oscar) -> tuple[Tenant, Tenant]:
    org.daily_budget_usd = Decimal("10")
    org.save(update_fields=["daily_budget_usd"])
    return (
        _tenant(org, alice, runs=2, cost="1.5", prefix="mine"),
        _tenant(other_org, oscar, runs=3, cost="7.25", prefix="theirs"),
    )
