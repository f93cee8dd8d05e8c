from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class PlatformEvent(models.Model):
    """The platform's event log (``ai.agent.created`` … ``ai.approval.resolved``).

    Rows are written after the transaction that caused them commits (see
    ``executions.events.event_emit``), so a rolled-back change never leaves an event behind.
    Webhook delivery reads from here.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("billing.Organization", on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=80, db_index=True)
    payload = models.JSONField(default=dict)
    # Loose references: the log outlives what it describes.
    agent_id = models.UUIDField(null=True, blank=True, db_index=True)
    execution_id = models.UUIDField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="event_org_created")]

    def __str__(self) -> str:
        return f"{self.event_type} @ {self.created_at:%Y-%m-%d %H:%M:%S}"
