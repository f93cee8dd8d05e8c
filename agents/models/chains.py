"""Agent chains (reference: agent_chains, chain_executions): ordered steps, each one agent run.

A chain's steps are one JSON document (``steps``), validated as a whole before save by
``agents.validation.chains`` — agents exist and can run, mappings name earlier outputs,
fallbacks form no cycle. A ``ChainExecution`` runs a snapshot of that document (editing
the chain never changes a run in flight) and records every step attempt as a
``ChainStepRun`` pointing at the agent execution it started.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class ChainStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    DEPRECATED = "deprecated", "Deprecated"


class AgentChain(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="chains")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # [{"id", "agent_id", "input_mapping", "output_mapping", "condition", "timeout_seconds",
    #   "on_error", "fallback_step"}, ...]
    steps = models.JSONField(default=list)
    # {"strategy": "stop" | "continue" | "fallback", "fallback_step": step id or null}
    error_handling = models.JSONField(default=dict, blank=True)
    # {"max_retries": 0-5, "backoff_seconds": s, "backoff_multiplier": x}
    retry_policy = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=3600)
    status = models.CharField(max_length=12, choices=ChainStatus.choices, default=ChainStatus.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "organization", name="chain_unique_name_per_org"),
        ]

    def __str__(self) -> str:
        return self.name


class ChainRunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


CHAIN_TERMINAL = frozenset(
    {ChainRunStatus.COMPLETED, ChainRunStatus.FAILED, ChainRunStatus.CANCELLED, ChainRunStatus.TIMED_OUT}
)


class ChainExecution(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    chain = models.ForeignKey(AgentChain, on_delete=models.CASCADE, related_name="executions")
    # The chain's definition when this run started: steps, error_handling, retry_policy, timeout.
    definition = models.JSONField(default=dict)
    input = models.JSONField(default=dict, blank=True)
    vars = models.JSONField(default=dict, blank=True)  # what the steps' output mappings produced
    output = models.JSONField(null=True, blank=True)
    # The chain's OpenTelemetry span ids (executions/telemetry.py): its steps' runs are its
    # children in one trace, whichever worker advances it.
    trace_context = models.JSONField(null=True, blank=True, editable=False)
    status = models.CharField(
        max_length=10, choices=ChainRunStatus.choices, default=ChainRunStatus.PENDING, db_index=True
    )
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_details = models.JSONField(default=dict, blank=True)
    failed_step = models.CharField(max_length=64, blank=True)
    # Index into the steps of the next normal step to consider.
    position = models.PositiveSmallIntegerField(default=0)
    # Set when an agent run started this chain (the trigger_workflow tool); its steps are
    # that run's children, so the depth limit and the token roll-up apply to them.
    parent_execution = models.ForeignKey(
        "executions.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # Whose key it is and the digest of the request it came with (executions.idempotency).
    idempotency_caller = models.CharField(max_length=64, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, null=True, blank=True)
    triggered_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tokens_total = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    # Who advances the run, until when (renewed while a step runs in-process), and when a
    # step retry is due.
    lease_owner = models.CharField(max_length=120, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="chainexec_org_created")]
        constraints = [
            # A key is the caller's, per chain (built CONCURRENTLY: agents.0007).
            models.UniqueConstraint(
                fields=["organization", "idempotency_key", "chain", "idempotency_caller"],
                condition=Q(idempotency_key__isnull=False),
                name="chainexec_idempotency_caller",
            )
        ]

    def __str__(self) -> str:
        return f"{self.chain_id} run {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in CHAIN_TERMINAL


class StepRunStatus(models.TextChoices):
    SCHEDULED = "scheduled"  # a retry waiting for its backoff
    RUNNING = "running"
    WAITING = "waiting"  # the agent run waits (a person, a timer) or runs on another worker
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"  # its condition did not hold


STEP_SETTLED = frozenset(
    {StepRunStatus.COMPLETED, StepRunStatus.FAILED, StepRunStatus.TIMED_OUT, StepRunStatus.SKIPPED}
)


class ChainStepRun(models.Model):
    """One attempt at one step: the agent execution it started and what came of it."""

    chain_execution = models.ForeignKey(ChainExecution, on_delete=models.CASCADE, related_name="step_runs")
    step_id = models.CharField(max_length=64)
    position = models.PositiveSmallIntegerField()
    attempt = models.PositiveSmallIntegerField(default=1)
    # The normal step this run stands in for when it runs as a fallback ("" otherwise).
    fallback_for = models.CharField(max_length=64, blank=True)
    execution = models.ForeignKey(
        "executions.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=StepRunStatus.choices, default=StepRunStatus.RUNNING)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    not_before = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["chain_execution", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["chain_execution", "step_id", "attempt", "fallback_for"], name="uniq_chain_step_attempt"
            )
        ]

    def __str__(self) -> str:
        return f"{self.step_id} #{self.attempt} ({self.status})"

    @property
    def is_settled(self) -> bool:
        return self.status in STEP_SETTLED
