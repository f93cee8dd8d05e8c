"""The benchmark's tenants, API tokens and agents, made through the platform's services.

Each figure runs a fresh agent (the per-agent hourly and daily run limits count that agent's
runs, so an agent reused across bench runs would make later runs check more rows), in an
organization on the Business plan (no agent cap, overage counted, as a paying tenant).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import OperationalError, transaction

from accounts.access import Actor
from accounts.models import Membership, Organization
from accounts.services import api_token_create, membership_set, organization_create, user_get_or_create
from agents.services.agents import agent_create
from agents.services.versions import agent_publish
from bench.tooling import LOOKUP
from billing.models import Plan
from executions.models import TERMINAL_STATUSES, Execution, ExecutionStep
from executions.services import execution_start

PLAN = "business"
OWNER = "owner@bench.agentry.test"
SYSTEM_PROMPT = "You are the benchmark agent. Use the lookup tool once, then answer briefly."
# High enough never to refuse a benchmark run; within agents.validation's ranges.
LIMITS = {
    "max_runs_per_hour": 1_000_000,
    "max_runs_per_day": 10_000_000,
    "max_steps_per_run": 50,
    "max_tool_calls_per_step": 3,
    "timeout_seconds": 900,
}


@dataclass
class Tenant:
    organization: Any
    user: Any
    actor: Any
    tokens: list[str] = field(default_factory=list)


def tenant(slug: str, *, tokens: int = 0) -> Tenant:
    """The organization ``slug`` with its owner (created once), and ``tokens`` fresh API tokens."""
    with transaction.atomic():
        organization = Organization.objects.filter(slug=slug).first() or organization_create(
            name=f"Bench {slug}", slug=slug
        )
        plan = Plan.objects.filter(slug=PLAN).first()
        if plan is not None and organization.plan_id != plan.pk:
            organization.plan = plan
            organization.save(update_fields=["plan"])
        user = user_get_or_create(email=OWNER)
        membership = Membership.objects.filter(user=user, organization=organization).first() or membership_set(
            organization=organization, user=user, role="owner"
        )
    actor = Actor(organization=organization, user=user, membership=membership)
    raw = [
        api_token_create(user=user, organization=organization, name=f"bench {i}", expires_in_days=1)[1]
        for i in range(tokens)
    ]
    return Tenant(organization, user, actor, raw)


def agent(owner: Tenant, label: str, **fields: Any) -> Any:
    """A fresh published agent with the ``lookup`` tool (``fields`` as in the API body)."""
    data: dict[str, Any] = {
        "name": f"{label} {uuid.uuid4().hex[:8]}",
        "system_prompt": SYSTEM_PROMPT,
        "allowed_tools": [LOOKUP],
        "limits": dict(LIMITS),
        "model_config": {"provider": "openai", "model": "gpt-4o"},
    }
    data.update(fields)
    created = agent_create(actor=owner.actor, data=data)
    agent_publish(actor=owner.actor, agent=created)
    created.refresh_from_db()
    return created


ATTEMPTS = 10


@dataclass
class Started:
    ids: list[Any] = field(default_factory=list)
    retries: int = 0  # deadlocks and other transient database errors, retried
    failed: int = 0  # starts that kept failing after ATTEMPTS tries


def start_runs(
    owner: Tenant,
    agent: Any,
    count: int,
    task: str,
    *,
    trigger_type: str = "manual",
    seconds: float | None = None,
) -> Started:
    """``count`` executions through ``execution_start`` (queued after commit), retrying the
    transient database errors a client of the API would retry (a deadlock answers 503);
    fewer when ``seconds`` run out first."""
    started = Started()
    deadline = time.monotonic() + seconds if seconds else None
    for _ in range(count):
        if deadline is not None and time.monotonic() > deadline:
            break
        for attempt in range(ATTEMPTS):
            try:
                execution, _ = execution_start(
                    agent=agent,
                    organization=owner.organization,
                    task=task,
                    actor=owner.actor,
                    trigger_type=trigger_type,
                )
                started.ids.append(execution.pk)
                break
            except OperationalError:
                if attempt == ATTEMPTS - 1:
                    started.failed += 1
                else:
                    started.retries += 1
    return started


def wait_for_runs(agent_id: Any, expected: int, *, stall_seconds: float, timeout: float) -> dict[str, Any]:
    """Wait until ``expected`` runs of the agent ended, or nothing moved for ``stall_seconds``.

    Progress is a run ending or a step written: a worker's threads take their pooled
    connections in turn, so a batch of runs advances in step and the first one ends only
    when most of the batch does - on a loaded machine later than a quick stall limit, with
    every run moving (issue #16: a quick P3 given up with 60 runs running and none ended).
    """
    deadline = time.monotonic() + timeout
    began = time.monotonic()
    last_progress, last_change, first_end = (-1, -1), began, None
    while True:
        count = Execution.objects.filter(agent_id=agent_id, status__in=TERMINAL_STATUSES).count()
        steps = ExecutionStep.objects.filter(execution__agent_id=agent_id).count()
        now = time.monotonic()
        if count and first_end is None:
            first_end = round(now - began, 1)
        if (count, steps) != last_progress:
            last_progress, last_change = (count, steps), now
        if count >= expected:
            return {"finished": count, "stalled": False, "timed_out": False, "first_end_s": first_end}
        if now - last_change > stall_seconds or now > deadline:
            return {
                "finished": count,
                "stalled": now - last_change > stall_seconds,
                "timed_out": now > deadline,
                "first_end_s": first_end,
                "steps": steps,
            }
        time.sleep(0.2)
