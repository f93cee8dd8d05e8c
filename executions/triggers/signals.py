"""Keep schedules in step with agents, whatever path changed them.

An agent's schedule depends on its current version, lifecycle status, ``is_active`` and —
for platform agents — each organization's configuration. Those change through the agents
services, the admin and data migrations alike; a ``post_save`` receiver sees all of them,
where calls sprinkled through each service would miss the next path someone adds. The sync
runs after the commit (it reads what was committed) and is idempotent.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_celery_beat.models import PeriodicTask

from agents.models import Agent, AgentConfiguration
from executions.models import ScheduledExecution
from executions.triggers.schedules import schedule_sync_agent

logger = logging.getLogger(__name__)


def schedule_sync_agent_on_commit(agent_id: Any) -> None:
    def sync() -> None:
        try:
            schedule_sync_agent(agent_id=agent_id)
        except Exception:
            # Never fail the change that triggered it; schedules_reconcile repairs drift.
            logger.exception("could not sync the schedules of agent %s", agent_id)

    transaction.on_commit(sync)


@receiver(post_save, sender=Agent, dispatch_uid="agentry_schedules_agent_saved")
def _agent_saved(sender: type, instance: Agent, raw: bool = False, created: bool = False, **kwargs: Any) -> None:
    if raw:
        return
    if instance.current_version_id is None and (
        created or not ScheduledExecution.objects.filter(agent_id=instance.pk).exists()
    ):
        return  # never published: no trigger_schedule can apply, nothing to sync
    schedule_sync_agent_on_commit(instance.pk)


@receiver(post_save, sender=AgentConfiguration, dispatch_uid="agentry_schedules_configuration_saved")
@receiver(post_delete, sender=AgentConfiguration, dispatch_uid="agentry_schedules_configuration_deleted")
def _configuration_changed(sender: type, instance: AgentConfiguration, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        schedule_sync_agent_on_commit(instance.agent_id)


@receiver(post_delete, sender=ScheduledExecution, dispatch_uid="agentry_schedules_schedule_deleted")
def _schedule_deleted(sender: type, instance: ScheduledExecution, **kwargs: Any) -> None:
    # Cascades (an organization deleted) bypass the services: take the beat entry with them.
    PeriodicTask.objects.filter(name=instance.periodic_task_name).delete()
