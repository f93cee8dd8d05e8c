from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

DRAFT_LABEL = "draft (unpublished)"


class ExecutionStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"  # a durable timer (the `wait` tool); no worker is held
    WAITING_APPROVAL = "waiting_approval"  # a person must decide; no worker is held
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


TERMINAL_STATUSES = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED, ExecutionStatus.TIMED_OUT}
)


class TriggerType(models.TextChoices):
    MANUAL = "manual"
    SCHEDULE = "schedule"
    EVENT = "event"
    WEBHOOK = "webhook"
    CHAIN = "chain"
    DELEGATION = "delegation"
    MCP = "mcp"  # a tool call at the MCP door (/mcp/)
    # The other protocol doors: an OpenAI-compatible request, an A2A message.
    OPENAI = "openai"
    A2A = "a2a"


class Execution(models.Model):
    """One run of one agent version. Its steps are the durable record the runtime resumes from."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of their own: the (organization, -created_at) and (agent, -created_at) indexes
    # lead with them and serve every lookup by either, cascades included (executions.0013).
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="executions", db_index=False
    )
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="executions", db_index=False)
    # Null on a draft run: the agent's unpublished draft, frozen into ``config`` when the run
    # was created (the playground, ``"draft": true``); every other run names its version.
    agent_version = models.ForeignKey(
        "agents.AgentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="executions"
    )
    # Trigger
    trigger_type = models.CharField(max_length=16, choices=TriggerType.choices, default=TriggerType.MANUAL)
    trigger_data = models.JSONField(default=dict, blank=True)
    triggered_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    triggered_by_token = models.ForeignKey(
        "accounts.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    depth = models.PositiveSmallIntegerField(default=0)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # Whose key it is ("user:<id>", "platform") and the digest of the request it came with
    # (executions.idempotency); null on runs from before keys had a caller.
    idempotency_caller = models.CharField(max_length=64, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, null=True, blank=True)
    # Input and result
    input = models.JSONField(default=dict)  # {"task": str, "context": {...}}
    # The effective configuration this run uses (the version's, with an organization's
    # overrides for platform agents), frozen when the run is created.
    config = models.JSONField(default=dict)
    conversation_id = models.UUIDField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)  # per-run override of the agent's
    # Not indexed alone (most rows are ended runs): (organization, status) and the partial
    # indexes of the live statuses below serve the lookups by status.
    status = models.CharField(max_length=20, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING)
    output = models.JSONField(null=True, blank=True)
    result_text = models.TextField(blank=True)
    actions_taken = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_details = models.JSONField(default=dict, blank=True)
    retry_count = models.PositiveIntegerField(default=0)
    # Resource usage
    tokens_input = models.PositiveIntegerField(default=0)
    tokens_output = models.PositiveIntegerField(default=0)
    tokens_cached = models.PositiveIntegerField(default=0)
    tokens_total = models.PositiveIntegerField(default=0)
    llm_calls = models.PositiveIntegerField(default=0)  # calls to a real model (priced or not)
    # Think steps answered by the offline sandbox provider ("[sandbox]"): no model was called,
    # so they are counted here and never in llm_calls or api_calls_count.
    sandbox_calls = models.PositiveIntegerField(default=0, db_default=0)
    tool_calls = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    cpu_time_ms = models.PositiveIntegerField(default=0)
    memory_peak_mb = models.PositiveIntegerField(default=0)
    api_calls_count = models.PositiveIntegerField(default=0)
    # Runtime bookkeeping: who is advancing the run, until when, and what it waits for.
    lease_owner = models.CharField(max_length=120, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    wait_until = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    # The run's OpenTelemetry span ids (executions/telemetry.py): every worker that advances
    # the run, after a crash or an approval too, writes its spans into this one trace.
    trace_context = models.JSONField(null=True, blank=True, editable=False)
    # Timing
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="exec_org_created"),
            models.Index(fields=["agent", "-created_at"], name="exec_agent_created"),
            models.Index(fields=["organization", "status"], name="exec_org_status"),
            models.Index(fields=["lease_expires_at"], name="exec_running_lease", condition=Q(status="running")),
            models.Index(fields=["wait_until"], name="exec_waiting_until", condition=Q(status="waiting")),
            # Pending runs never claimed (executions_due, executions_requeue_stuck).
            models.Index(fields=["created_at"], name="exec_pending_created", condition=Q(status="pending")),
        ]
        constraints = [
            # A key is the caller's, per agent (built CONCURRENTLY: executions.0004). The key
            # leads so a lookup of the key alone, for a run from before callers, uses it too.
            models.UniqueConstraint(
                fields=["organization", "idempotency_key", "agent", "idempotency_caller"],
                condition=Q(idempotency_key__isnull=False),
                name="exec_idempotency_caller",
            )
        ]
        permissions = [("cancel_execution", "Can cancel an execution")]

    def __str__(self) -> str:
        return f"{self.agent_id} run {self.id} ({self.status})"

    @property
    def task(self) -> str:
        return str(self.input.get("task", ""))

    @property
    def is_draft(self) -> bool:
        """A run of the agent's unpublished draft (no version)."""
        return self.agent_version_id is None

    @property
    def version_label(self) -> str:
        """The version's number, or "draft (unpublished)" for a draft run."""
        return DRAFT_LABEL if self.agent_version_id is None else self.agent_version.version  # type: ignore[union-attr]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class StepType(models.TextChoices):
    OBSERVE = "observe"
    THINK = "think"
    ACT = "act"
    REFLECT = "reflect"


class StepStatus(models.TextChoices):
    STARTED = "started"  # committed before the call: a crash leaves this behind
    COMPLETED = "completed"
    FAILED = "failed"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"  # a person said yes; the runtime runs it on resume
    DENIED = "denied"


class ExecutionStep(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="steps")
    step_number = models.PositiveIntegerField()
    step_type = models.CharField(max_length=10, choices=StepType.choices)
    status = models.CharField(max_length=20, choices=StepStatus.choices, default=StepStatus.STARTED)
    input_text = models.TextField(blank=True)
    reasoning = models.TextField(blank=True)
    output_text = models.TextField(blank=True)
    # Think steps: the model's tool calls, to rebuild the conversation on resume.
    llm_tool_calls = models.JSONField(default=list, blank=True)
    # Think steps: what was sent (messages, tool specs, retrieved data), bounded and redacted
    # (executions.runtime.recorded), for the console's trace.
    request = models.JSONField(default=dict, blank=True, db_default={})
    provider = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=120, blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)
    # Act steps
    tool_name = models.CharField(max_length=120, blank=True)
    tool_call_id = models.CharField(max_length=120, blank=True)
    tool_input = models.JSONField(null=True, blank=True)
    tool_output = models.JSONField(null=True, blank=True)
    is_error = models.BooleanField(default=False)
    # Usage
    tokens_input = models.PositiveIntegerField(default=0)
    tokens_output = models.PositiveIntegerField(default=0)
    tokens_used = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    attempts = models.PositiveSmallIntegerField(default=1)
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["execution", "step_number"]
        constraints = [models.UniqueConstraint(fields=["execution", "step_number"], name="uniq_step_number")]

    def __str__(self) -> str:
        return f"{self.execution_id} #{self.step_number} {self.step_type}"

    @property
    def idempotency_key(self) -> str:
        return f"{self.execution_id}:{self.step_number}"


class LogLevel(models.TextChoices):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


class ExecutionLog(models.Model):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="logs")
    level = models.CharField(max_length=8, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["execution", "id"]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:60]}"


class ExecutionEvent(models.Model):
    """The stream of an execution, persisted so a late SSE client replays what it missed.

    ``seq`` is the SSE event id. Token deltas are not persisted (they are published live
    only); ``think_completed`` carries the whole text.
    """

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    event = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["execution", "seq"]
        constraints = [models.UniqueConstraint(fields=["execution", "seq"], name="uniq_event_seq")]

    def __str__(self) -> str:
        return f"{self.execution_id} {self.seq} {self.event}"


class AgentRunWindow(models.Model):
    """Runs an agent started in the current UTC hour and the current UTC day: the counters
    ``max_runs_per_hour``/``max_runs_per_day`` are checked against (executions.services).

    One narrow row per agent, counted up by one UPSERT in the transaction that creates the
    run (its row lock orders concurrent starts of one agent, a refused or rolled-back start
    is not counted), instead of two COUNT(*) over the agent's runs of the last hour and day
    that grew with them. Windows are fixed (the clock's hour and day, UTC), not sliding.
    """

    agent = models.OneToOneField("agents.Agent", on_delete=models.CASCADE, primary_key=True, related_name="+")
    hour_start = models.DateTimeField()
    hour_runs = models.PositiveIntegerField(default=0)
    day_start = models.DateField()
    day_runs = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.agent_id}: {self.hour_runs} this hour, {self.day_runs} today"


class PlatformEvent(models.Model):
    """The platform's event log (``ai.agent.created`` … ``ai.approval.resolved``).

    Rows are written after the transaction that caused them commits (see
    ``executions.events.event_emit``), so a rolled-back change never leaves an event behind.
    Webhook delivery reads from here.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="events")
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


# Triggers and events out live in their own modules; importing them here keeps every
# ``executions.models.X`` import working.
from executions.models.triggers import AgentHookSecret, ScheduledExecution, ScheduleSource, TriggerAttempt  # noqa: E402
from executions.models.webhooks import (  # noqa: E402
    OPEN_DELIVERY_STATUSES,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "OPEN_DELIVERY_STATUSES",
    "TERMINAL_STATUSES",
    "AgentHookSecret",
    "AgentRunWindow",
    "DeliveryStatus",
    "Execution",
    "ExecutionEvent",
    "ExecutionLog",
    "ExecutionStatus",
    "ExecutionStep",
    "LogLevel",
    "PlatformEvent",
    "ScheduleSource",
    "ScheduledExecution",
    "StepStatus",
    "StepType",
    "TriggerAttempt",
    "TriggerType",
    "WebhookDelivery",
    "WebhookEndpoint",
]
