"""Reads for executions, scoped to the actor's organization and the agents they may see."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.access import Actor
from agents.access import visible_agents_q
from agents.models import Agent
from config.api.errors import NotFound
from executions.models import Execution


def execution_list(*, actor: Actor) -> QuerySet[Execution]:
    """The organization's runs the actor may see.

    Whoever may manage every agent sees every run of the organization - platform agents'
    runs (they belong to the organization that ran them) and runs of deleted agents (the
    record of what was done outlives the agent) included; the filter is then the
    organization alone, which its (organization, created_at) index serves. Others see the
    runs of the agents they may see and of platform agents, through one subquery on agents
    (no join: the page is read off the same index).
    """
    runs = (
        Execution.objects.filter(organization=actor.organization)
        .select_related("agent_version")
        # The configuration snapshots (the run's and its version's) are the largest JSON of a
        # row and no list or detail shows them: decoding them was most of a page's time.
        .defer("config", "agent_version__config", "agent_version__changelog")
    )
    if actor.has_perm("agents.view_agent") and actor.has_perm("agents.manage_all_agents"):
        return runs
    agents = Agent.objects.filter(visible_agents_q(actor) | Q(organization__isnull=True)).values("pk")
    return runs.filter(agent__in=agents)


def execution_get(*, actor: Actor, execution_id: Any) -> Execution:
    try:
        pk = uuid.UUID(str(execution_id))
    except ValueError:
        raise NotFound("Execution not found.") from None
    execution = execution_list(actor=actor).filter(pk=pk).first()
    if execution is None:
        raise NotFound("Execution not found.", details={"execution_id": str(execution_id)})
    return execution


def run_counts(*, organization: Any, start: date, end: date, group_by: str) -> list[Any] | None:
    """Runs created per group over [start, end] (days, UTC), for billing's usage report
    (registered in ``billing.report_sources`` by this app's ready())."""
    runs_qs = Execution.objects.filter(
        organization=organization,
        created_at__gte=datetime.combine(start, time.min, tzinfo=timezone.get_fixed_timezone(0)),
        created_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=timezone.get_fixed_timezone(0)),
    )
    if group_by == "user":
        # Tool calls per user from the runs they started; approvals have no user to count by.
        return list(
            runs_qs.values(key=F("triggered_by_user__username")).annotate(
                runs=Count("id"), tool_calls=Sum("tool_calls")
            )
        )
    if group_by == "day":
        return list(runs_qs.annotate(key=TruncDate("created_at")).values("key").annotate(runs=Count("id")))
    if group_by == "agent":
        return list(runs_qs.values(key=F("agent_id")).annotate(runs=Count("id")))
    return None  # a run may use several providers/models: runs are not split by them
