"""Human approval of risky tool calls (DESIGN.md §7; reference ``ai_agent_approvals``)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class RiskLevel(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


RISK_ORDER = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2, RiskLevel.CRITICAL: 3}


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    # The run ended another way (cancelled on request, timed out) before anyone decided.
    CANCELLED = "cancelled"


class ApprovalRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="approvals")
    execution = models.ForeignKey("executions.Execution", on_delete=models.CASCADE, related_name="approvals")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="approvals")
    # The act step held for the decision (its tool_input is what runs when approved).
    step = models.OneToOneField(
        "executions.ExecutionStep", null=True, blank=True, on_delete=models.SET_NULL, related_name="approval"
    )
    step_number = models.PositiveIntegerField()
    # Action needing approval
    action_type = models.CharField(max_length=120)  # the tool's name
    action_description = models.TextField()
    action_params = models.JSONField(default=dict)  # what runs: the model's, or the approver's edit
    original_params = models.JSONField(default=dict)  # what the model asked for
    # Risk assessment
    risk_level = models.CharField(max_length=8, choices=RiskLevel.choices, default=RiskLevel.LOW)
    risk_explanation = models.TextField(blank=True)
    # Status and resolution
    status = models.CharField(max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "expires_at"], name="approval_pending", condition=Q(status="pending")),
            models.Index(fields=["organization", "-created_at"], name="approval_org_created"),
        ]
        permissions = [("resolve_approvalrequest", "Can approve or deny an agent's action")]

    def __str__(self) -> str:
        return f"{self.action_type} ({self.status}, {self.risk_level})"

    @property
    def is_pending(self) -> bool:
        return self.status == ApprovalStatus.PENDING

    @property
    def params_edited(self) -> bool:
        return self.action_params != self.original_params


class RiskRule(models.Model):
    """An organization's own risk rule, read before the platform's defaults (first match wins).

    ``pattern`` is a tool name or wildcard (``crm_delete_*``). With ``count_field`` and
    ``count_threshold``, a list argument of that many items or more raises the level to
    ``threshold_risk_level`` (``email_send`` to 10 or more recipients is critical).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="risk_rules")
    pattern = models.CharField(max_length=120)
    risk_level = models.CharField(max_length=8, choices=RiskLevel.choices)
    count_field = models.CharField(max_length=64, blank=True)
    count_threshold = models.PositiveIntegerField(null=True, blank=True)
    threshold_risk_level = models.CharField(max_length=8, choices=RiskLevel.choices, blank=True)
    description = models.CharField(max_length=300, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization", "position", "created_at"]

    def __str__(self) -> str:
        return f"{self.pattern} → {self.risk_level}"

    def as_rule(self) -> dict:
        return {
            "pattern": self.pattern,
            "risk_level": self.risk_level,
            "count_field": self.count_field or None,
            "count_threshold": self.count_threshold,
            "threshold_risk_level": self.threshold_risk_level or None,
            "source": f"organization rule {self.pk}",
        }
