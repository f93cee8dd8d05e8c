"""Triggers: cron schedules kept in step with beat, inbound-hook secrets, refused attempts."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from config.crypto import EncryptedTextField


class ScheduleSource(models.TextChoices):
    API = "api", "Scheduled execution"  # created through schedules/ (or the admin) with its own input
    AGENT = "agent", "Agent trigger_schedule"  # mirrors the agent's current version; changed through the agent


class ScheduledExecution(models.Model):
    """A cron schedule for one agent in one organization, mirrored by a beat ``PeriodicTask``.

    Every change goes through ``executions.triggers.schedules`` so the PeriodicTask always
    says the same thing as this row (cron, timezone, enabled). ``fire_count`` counts what
    beat delivered, duplicates included; runs are keyed on the tick, so it may exceed the
    number of runs started.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="schedules")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="schedules")
    source = models.CharField(max_length=8, choices=ScheduleSource.choices, default=ScheduleSource.API)
    cron_expression = models.CharField(max_length=120)
    timezone = models.CharField(max_length=64, default="UTC")
    input = models.JSONField(default=dict, blank=True)  # {"task": str, "context": {...}}
    is_active = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_execution_at = models.DateTimeField(null=True, blank=True)
    last_execution_id = models.UUIDField(null=True, blank=True)
    next_execution_at = models.DateTimeField(null=True, blank=True)
    fire_count = models.PositiveIntegerField(default=0)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="schedule_org_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "organization"], condition=Q(source="agent"), name="one_agent_trigger_schedule"
            )
        ]

    def __str__(self) -> str:
        return f"{self.cron_expression} ({self.timezone}) for {self.agent_id}"

    @property
    def periodic_task_name(self) -> str:
        return f"agentry.schedule.{self.pk}"


class AgentHookSecret(models.Model):
    """The secret that signs requests to ``hooks/{agent_id}/``; shown once when (re)made."""

    agent = models.OneToOneField("agents.Agent", on_delete=models.CASCADE, primary_key=True, related_name="+")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    secret = EncryptedTextField()
    secret_last4 = models.CharField(max_length=4)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"hook secret …{self.secret_last4} of {self.agent_id}"


class TriggerAttempt(models.Model):
    """A trigger that wanted to start a run and was refused (rate limit, quota, input, state).

    Runs that did start need no row here: the Execution is the record.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    trigger_type = models.CharField(max_length=16)
    code = models.CharField(max_length=40)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    trigger_data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="attempt_org_created")]

    def __str__(self) -> str:
        return f"{self.trigger_type} refused ({self.code})"
