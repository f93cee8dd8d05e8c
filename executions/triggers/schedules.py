"""Cron schedules: ScheduledExecution rows kept in step with django-celery-beat PeriodicTasks.

Two kinds of rows, one mechanism (DESIGN.md §9):
- ``source=api``: created through ``schedules/`` (or the admin) with their own input;
- ``source=agent``: the agent's own ``trigger_schedule``, one row per agent and organization
  (a platform agent gets one per organization that switched it on), created, changed and
  removed by ``schedule_sync_agent`` whenever the agent or its configuration changes.

Every write here updates the row and its PeriodicTask in one transaction, so beat (which
reads the database) never sees one without the other. Beat sends ``executions.schedule_fire``;
``schedule_fire`` keys the run on (schedule, tick), so a tick delivered twice — beat restarted
before recording what it sent, a duplicate message — still starts one run.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from accounts.access import Actor
from accounts.services import activity_record
from agents.models import Agent, AgentConfiguration, AgentStatus
from agents.selectors import agent_effective_config, agent_is_runnable
from agents.triggers.cron import (
    cron_fields,
    cron_next,
    cron_normalise,
    cron_problem,
    cron_tick_at,
    timezone_problem,
)
from config.api.errors import Conflict, InvalidInput
from config.json_schema import error_line, schema_errors
from executions.models import Execution, ScheduledExecution, ScheduleSource, TriggerType
from executions.triggers.common import trigger_start

logger = logging.getLogger(__name__)

FIRE_TASK = "executions.schedule_fire"
# A tick not picked up by a worker within this many seconds is dropped, not run late.
TICK_EXPIRES_SECONDS = 300
EDITABLE = frozenset({"cron_expression", "timezone", "input", "is_active"})


# --- the PeriodicTask mirror ------------------------------------------------------------------


def schedule_blockers(schedule: ScheduledExecution) -> list[str]:
    """Why beat does not fire it (empty: it fires), each saying what to do about it."""
    agent = schedule.agent
    reasons = []
    if not schedule.is_active:
        reasons.append("The schedule is paused (is_active false); PATCH it with is_active true.")
    if agent.deleted_at is not None:
        reasons.append("Its agent was deleted.")
    elif agent.status == AgentStatus.ARCHIVED:
        reasons.append("Its agent is archived.")
    elif agent.status == AgentStatus.DRAFT or agent.current_version_id is None:
        reasons.append(
            f"Its agent is {agent.status} with no published version; publish it (POST /api/v1/agents/{agent.pk}/publish/)."
        )
    if agent.deleted_at is None and not agent.is_active:
        reasons.append(
            f"Its agent is inactive: triggers do not start it; activate it (POST /api/v1/agents/{agent.pk}/activate/)."
        )
    if agent.organization_id is None and not (
        AgentConfiguration.objects.filter(
            organization_id=schedule.organization_id, agent=agent, is_active=True
        ).exists()
    ):
        reasons.append("This organization has no active configuration of the platform agent.")
    return reasons


def schedule_enabled(schedule: ScheduledExecution) -> bool:
    """Whether beat should fire it: switched on, and its agent may be triggered now."""
    return not schedule_blockers(schedule)


def _crontab(schedule: ScheduledExecution) -> Any:
    fields = {**cron_fields(schedule.cron_expression), "timezone": schedule.timezone}
    # No unique constraint on CrontabSchedule: tolerate the duplicates a race may leave.
    return CrontabSchedule.objects.filter(**fields).order_by("id").first() or CrontabSchedule.objects.create(**fields)


def _sync_periodic_task(schedule: ScheduledExecution, *, reset_last_run: bool = False) -> None:
    """Create or update the schedule's PeriodicTask; save only what changed, because every
    save makes beat reload its whole schedule."""
    enabled = schedule_enabled(schedule)
    values: dict[str, Any] = {
        "name": schedule.periodic_task_name,
        "task": FIRE_TASK,
        "crontab": _crontab(schedule),
        "interval": None,
        "kwargs": json.dumps({"schedule_id": str(schedule.pk), "expires_in": TICK_EXPIRES_SECONDS}),
        "queue": "default",
        "expire_seconds": TICK_EXPIRES_SECONDS,
        "enabled": enabled,
        "description": f"Agentry schedule of agent {schedule.agent_id} ({schedule.source})",
    }
    task = schedule.periodic_task or PeriodicTask.objects.filter(name=values["name"]).first()
    if task is None:
        # The first tick is the next one after now, never a catch-up of the past.
        task = PeriodicTask.objects.create(**values, last_run_at=timezone.now())
    else:
        changed = [key for key, value in values.items() if getattr(task, key) != value]
        if reset_last_run:
            # A new cron or timezone starts from now: beat would otherwise fire at once for
            # a tick of the new expression that lies between the last run and now.
            task.last_run_at = timezone.now()
            changed.append("last_run_at")
        if changed:
            for key in changed:
                if key in values:
                    setattr(task, key, values[key])
            task.save()
    next_at = cron_next(schedule.cron_expression, schedule.timezone, timezone.now()) if enabled else None
    if schedule.periodic_task_id != task.pk or schedule.next_execution_at != next_at:
        schedule.periodic_task = task
        schedule.next_execution_at = next_at
        ScheduledExecution.objects.filter(pk=schedule.pk).update(periodic_task=task, next_execution_at=next_at)


def _delete_periodic_task(schedule: ScheduledExecution) -> None:
    PeriodicTask.objects.filter(name=schedule.periodic_task_name).delete()


# --- schedules/ -------------------------------------------------------------------------------


def _validated(data: dict[str, Any], *, agent: Agent, organization: Any, partial: bool) -> dict[str, Any]:
    """Check a schedule body (all of it, or the fields of a PATCH); InvalidInput lists every problem."""
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(data) - EDITABLE)
    for key in unknown:
        errors[key] = ["Unknown field."]
    clean: dict[str, Any] = {}
    if "cron_expression" in data or not partial:
        problem = cron_problem(data.get("cron_expression"))
        if problem:
            errors["cron_expression"] = [problem]
        else:
            clean["cron_expression"] = cron_normalise(data["cron_expression"])
    if "timezone" in data or not partial:
        name = data.get("timezone", "UTC")
        problem = timezone_problem(name)
        if problem:
            errors["timezone"] = [problem]
        else:
            clean["timezone"] = name
    if "is_active" in data:
        if not isinstance(data["is_active"], bool):
            errors["is_active"] = ["Must be true or false."]
        else:
            clean["is_active"] = data["is_active"]
    if "input" in data or not partial:
        value = data.get("input")
        if not isinstance(value, dict):
            errors["input"] = ['Must be an object: {"task": "…", "context": {…}}.']
        else:
            task, context = value.get("task"), value.get("context", {})
            extra = sorted(set(value) - {"task", "context"})
            if extra:
                errors["input"] = [f"Unknown keys {extra}; use task and context."]
            elif not isinstance(task, str) or not task.strip():
                errors["input.task"] = ["A non-empty string is required."]
            elif not isinstance(context, dict):
                errors["input.context"] = ["Must be an object."]
            else:
                schema = None
                if agent.current_version is not None:
                    schema = agent_effective_config(version=agent.current_version, organization=organization).get(
                        "input_schema"
                    )
                if schema and (problems := schema_errors(schema, context)):
                    errors["input.context"] = [error_line(p) for p in problems]
                clean["input"] = {"task": task, "context": context}
    if errors:
        raise InvalidInput("The schedule is invalid.", validation_errors=errors)
    return clean


@transaction.atomic
def schedule_create(
    *, actor: Actor | None, agent: Agent, data: dict[str, Any], organization: Any = None, by_user: Any = None
) -> ScheduledExecution:
    """A schedule with its own input for an agent the caller may run (checked by the caller)."""
    organization = actor.organization if actor is not None else (organization or agent.organization)
    agent = Agent.objects.select_related("current_version").get(pk=agent.pk)  # its state now, not the caller's copy
    clean = _validated(data, agent=agent, organization=organization, partial=False)
    schedule = ScheduledExecution.objects.create(
        organization=organization,
        agent=agent,
        source=ScheduleSource.API,
        created_by=actor.user if actor is not None else by_user,  # type: ignore[misc]
        **clean,
    )
    schedule.agent = agent
    _sync_periodic_task(schedule)
    _record(actor, schedule, "schedule.created", by_user, clean)
    return schedule


@transaction.atomic
def schedule_update(
    *, actor: Actor | None, schedule: ScheduledExecution, data: dict[str, Any], by_user: Any = None
) -> ScheduledExecution:
    """Change cron, timezone, input or is_active (pause/resume); beat follows at once."""
    schedule = ScheduledExecution.objects.select_for_update().select_related("agent").get(pk=schedule.pk)
    if schedule.source == ScheduleSource.AGENT:
        raise Conflict(
            "This schedule is the agent's trigger_schedule; change or deactivate the agent instead.",
            details={"agent_id": str(schedule.agent_id)},
        )
    clean = _validated(data, agent=schedule.agent, organization=schedule.organization, partial=True)
    timing = any(
        clean.get(key, getattr(schedule, key)) != getattr(schedule, key) for key in ("cron_expression", "timezone")
    )
    for key, value in clean.items():
        setattr(schedule, key, value)
    schedule.save(update_fields=[*clean, "updated_at"])
    _sync_periodic_task(schedule, reset_last_run=timing)
    _record(actor, schedule, "schedule.updated", by_user, clean)
    return schedule


@transaction.atomic
def schedule_delete(*, actor: Actor | None, schedule: ScheduledExecution, by_user: Any = None) -> None:
    if schedule.source == ScheduleSource.AGENT and actor is not None:
        raise Conflict(
            "This schedule is the agent's trigger_schedule; clear it on the agent instead.",
            details={"agent_id": str(schedule.agent_id)},
        )
    _delete_periodic_task(schedule)
    _record(actor, schedule, "schedule.deleted", by_user, {})
    schedule.delete()


def _record(actor: Actor | None, schedule: ScheduledExecution, action: str, by_user: Any, data: dict) -> None:
    activity_record(
        organization=schedule.organization,
        actor=actor,
        user=by_user,
        action=action,
        target=schedule,
        agent_id=schedule.agent_id,
        request_summary={k: v for k, v in data.items() if k != "input"},
    )


# --- the agent's own trigger_schedule -------------------------------------------------------


def _wanted_agent_schedules(agent: Agent) -> dict[Any, tuple[str, str]]:
    """{organization id: (cron, timezone)} the agent's current version asks for."""
    if agent.current_version is None or not agent_is_runnable(agent):
        return {}
    if agent.organization is not None:
        organizations = [agent.organization]
    else:
        organizations = [
            c.organization for c in agent.configurations.filter(is_active=True).select_related("organization")
        ]
    wanted = {}
    for organization in organizations:
        config = agent_effective_config(version=agent.current_version, organization=organization)
        cron = (config.get("trigger_schedule") or "").strip()
        if cron and cron_problem(cron) is None:
            wanted[organization.pk] = (cron_normalise(cron), config.get("trigger_timezone") or "UTC")
    return wanted


@transaction.atomic
def schedule_sync_agent(*, agent_id: Any) -> None:
    """Make the agent's schedules say what its current version and switches say.

    Called after every change of an agent or of an organization's configuration of it
    (executions.triggers.signals); idempotent, so calling it too often costs a few queries.
    """
    agent = Agent.objects.select_for_update(no_key=True).filter(pk=agent_id).first()
    if agent is None:
        return
    agent = Agent.objects.select_related("current_version", "organization").get(pk=agent_id)
    wanted = _wanted_agent_schedules(agent)
    for schedule in ScheduledExecution.objects.filter(agent=agent).select_related("periodic_task"):
        schedule.agent = agent
        if schedule.source == ScheduleSource.AGENT:
            target = wanted.pop(schedule.organization_id, None)
            if target is None:
                _delete_periodic_task(schedule)
                schedule.delete()
                continue
            if (schedule.cron_expression, schedule.timezone) != target:
                schedule.cron_expression, schedule.timezone = target
                schedule.save(update_fields=["cron_expression", "timezone", "updated_at"])
                _sync_periodic_task(schedule, reset_last_run=True)
                continue
        _sync_periodic_task(schedule)
    for organization_id, (cron, tz) in wanted.items():
        schedule = ScheduledExecution.objects.create(
            organization_id=organization_id,
            agent=agent,
            source=ScheduleSource.AGENT,
            cron_expression=cron,
            timezone=tz,
            input={},
        )
        schedule.agent = agent
        _sync_periodic_task(schedule)


def schedules_reconcile() -> int:
    """Beat job: every schedule's PeriodicTask matches it; PeriodicTasks of schedules that are
    gone (a cascade that skipped the services) are removed. Returns the number fixed."""
    fixed = 0
    known = set()
    for schedule in ScheduledExecution.objects.select_related("agent", "periodic_task").iterator(chunk_size=200):
        known.add(schedule.periodic_task_name)
        with transaction.atomic():
            _sync_periodic_task(schedule)
    orphans = PeriodicTask.objects.filter(name__startswith="agentry.schedule.").exclude(name__in=known)
    fixed += orphans.delete()[0]
    return fixed


# --- beat fires -------------------------------------------------------------------------------


def schedule_fire(*, schedule_id: Any, sent_at: datetime | None = None) -> Execution | None:
    """Start the run of the tick beat sent at ``sent_at`` (the worker's clock if unknown).

    The idempotency key is the schedule and the tick's scheduled time, so the same tick
    delivered twice (beat restarted before recording what it sent, a redelivered message)
    never starts a second run.
    """
    now = timezone.now()
    updated = ScheduledExecution.objects.filter(pk=schedule_id).update(
        fire_count=F("fire_count") + 1, last_fired_at=now
    )
    if not updated:
        return None  # deleted after beat read it; schedules_reconcile removes the task
    schedule = ScheduledExecution.objects.select_related("agent__current_version", "organization").get(pk=schedule_id)
    next_at = cron_next(schedule.cron_expression, schedule.timezone, now)
    if not schedule_enabled(schedule):
        # Paused or deactivated after beat loaded its schedule: beat reloads within seconds.
        return None
    tick = cron_tick_at(schedule.cron_expression, schedule.timezone, sent_at or now)
    if tick is None:
        return None
    inputs = schedule.input or {}
    task = (
        inputs.get("task")
        or f"Scheduled run of {schedule.agent.name} ({schedule.cron_expression}, {schedule.timezone})."
    )
    execution, created, _attempt = trigger_start(
        agent=schedule.agent,
        organization=schedule.organization,
        trigger_type=TriggerType.SCHEDULE,
        task=task,
        context=inputs.get("context") or {},
        trigger_data={
            "schedule_id": str(schedule.pk),
            "source": schedule.source,
            "scheduled_for": tick.isoformat(),
            "cron_expression": schedule.cron_expression,
            "timezone": schedule.timezone,
        },
        idempotency_key=f"schedule:{schedule.pk}:{tick:%Y%m%dT%H%MZ}",
    )
    fields: dict[str, Any] = {"next_execution_at": next_at}
    if execution is not None and created:
        fields.update(last_execution_at=execution.created_at, last_execution_id=execution.pk)
    ScheduledExecution.objects.filter(pk=schedule.pk).update(**fields)
    return execution if created else None
