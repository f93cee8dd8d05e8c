from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone


class Plan(models.Model):
    """What an organization buys: included runs and tokens per period, limits, features."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    price_usd = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    included_runs = models.PositiveIntegerField(default=500)
    included_tokens = models.PositiveBigIntegerField(default=500_000)
    # False: the included amounts are a hard quota (429 past them); True: overage is counted.
    allow_overage = models.BooleanField(default=False)
    max_agents = models.PositiveIntegerField(null=True, blank=True)
    features = models.JSONField(default=dict, blank=True)  # {"ai_addon": true, ...}
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["price_usd"]

    def __str__(self) -> str:
        return self.name


class UsageRecord(models.Model):
    """One priced LLM call, written in the same transaction as the step that made it."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="usage_records")
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    execution = models.ForeignKey(
        "executions.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_records"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    purpose = models.CharField(max_length=20, default="run")  # run, memory, embedding
    # Priced with the configured default because the model had no ModelPrice row.
    priced_by_default = models.BooleanField(default=False)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=120)
    tokens_input = models.PositiveIntegerField(default=0)
    tokens_output = models.PositiveIntegerField(default=0)
    tokens_cached = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "created_at"], name="usage_org_created"),
            models.Index(fields=["execution"], name="usage_execution"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.tokens_input}+{self.tokens_output} ${self.cost}"


class ModelPrice(models.Model):
    """List price of a model per million tokens (USD), valid from a date; editable in the admin."""

    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=120)
    input_per_million = models.DecimalField(max_digits=12, decimal_places=6, validators=[MinValueValidator(Decimal(0))])
    output_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(Decimal(0))]
    )
    cached_input_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, validators=[MinValueValidator(Decimal(0))]
    )
    effective_from = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider", "model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model", "effective_from"], name="uniq_model_price"),
            models.CheckConstraint(
                condition=models.Q(input_per_million__gte=0, output_per_million__gte=0), name="model_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}: {self.input_per_million}/{self.output_per_million} per M"


class DailyUsage(models.Model):
    """Per organization, day, agent, provider and model: updated with every priced call."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="daily_usage")
    date = models.DateField()
    agent_id = models.UUIDField(null=True, blank=True)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=120)
    llm_calls = models.PositiveIntegerField(default=0)
    tokens_input = models.PositiveBigIntegerField(default=0)
    tokens_output = models.PositiveBigIntegerField(default=0)
    tokens_cached = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)
    # Counted on the agent's row with an empty provider and model (billing.usage.usage_count):
    # a tool call or an approval request is no model's.
    # db_default: the rollups are written in raw SQL (billing.usage) that names its columns.
    tool_calls = models.PositiveIntegerField(db_default=0)
    approvals = models.PositiveIntegerField(db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "date", "agent_id", "provider", "model"],
                name="uniq_daily_usage",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["organization", "date"], name="daily_usage_org_date")]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.date} {self.provider}/{self.model}"


class UsagePeriod(models.Model):
    """One billing period of an organization: what the plan included and what was used.

    Its row is the lock that makes quotas exact: starting a run locks it, checks, counts.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="usage_periods")
    period_start = models.DateField()
    period_end = models.DateField()  # exclusive
    included_runs = models.PositiveIntegerField()
    included_tokens = models.PositiveBigIntegerField()
    runs_used = models.PositiveIntegerField(default=0)
    tokens_used = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)
    # db_default: the rollups are written in raw SQL (billing.usage) that names its columns.
    tool_calls = models.PositiveIntegerField(db_default=0)
    approvals = models.PositiveIntegerField(db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "period_start"], name="uniq_usage_period"),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.period_start}..{self.period_end}"

    @property
    def overage_runs(self) -> int:
        return max(self.runs_used - self.included_runs, 0)

    @property
    def overage_tokens(self) -> int:
        return max(self.tokens_used - self.included_tokens, 0)


class Alert(models.Model):
    """An in-app notice to an organization's admins (also e-mailed); one per kind and period key."""

    class Kind(models.TextChoices):
        QUOTA_RUNS = "quota_runs"
        QUOTA_TOKENS = "quota_tokens"
        BUDGET_DAILY = "budget_daily"
        BUDGET_MONTHLY = "budget_monthly"
        FAILURE_SPIKE = "failure_spike"
        STUCK_RUNS = "stuck_runs"
        # A guardian agent's monitoring rule (key: guardian, rule and window start).
        GUARDIAN_BREACH = "guardian_breach"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    threshold = models.PositiveSmallIntegerField(default=0)  # percent, for quotas and budgets
    # What makes the alert unique: the period ("2026-11"), the day, or an agent and hour.
    key = models.CharField(max_length=120)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind", "threshold", "key"], name="uniq_alert"),
        ]

    def __str__(self) -> str:
        return self.message[:80]
