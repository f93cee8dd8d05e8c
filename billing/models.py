from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.roles import Role, permissions_for


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


class Organization(models.Model):
    """The tenant and billing account. Every tenant-owned row points here."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    is_active = models.BooleanField(default=True)
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="organizations")
    # Budget caps in USD; null = no cap. Checked before every LLM call.
    daily_budget_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal(0))]
    )
    monthly_budget_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal(0))]
    )
    # {"member": ["agents.view_agent", ...]} replaces a role's default permissions.
    role_permissions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="uniq_membership")]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"

    def permissions(self) -> frozenset[str]:
        return permissions_for(self.role, self.organization.role_permissions)

    def has_perm(self, perm: str) -> bool:
        return perm in self.permissions()


class Scope(models.TextChoices):
    AGENTS_READ = "agents:read"
    AGENTS_WRITE = "agents:write"
    AGENTS_EXECUTE = "agents:execute"
    APPROVALS_RESOLVE = "approvals:resolve"
    USAGE_READ = "usage:read"
    ADMIN = "admin"


class ApiToken(models.Model):
    """A bearer token for one user in one organization.

    Only the SHA-256 of the token and its first characters (for recognising it in a list)
    are stored; the value is shown once, when it is created. Tokens carry 256 bits of
    randomness, so a fast hash is the right one (a slow password hash would only slow every
    request down).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The token that minted this one through the API (null: made in a session, the admin or a
    # command). A child never outlives its parent and is revoked with it.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children", db_index=False
    )

    class Meta:
        ordering = ["-created_at"]
        # Built CONCURRENTLY (billing.0005): revoking a token finds its children through it.
        indexes = [models.Index(fields=["parent"], name="apitoken_parent", condition=Q(parent__isnull=False))]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def has_scope(self, scope: str) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


class ActivityLog(models.Model):
    """Audit trail of every change, execution, grant and approval, written by the services."""

    class Status(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="activity")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL)
    # Loose references (no FK): the log outlives what it talks about.
    agent_id = models.UUIDField(null=True, blank=True, db_index=True)
    action = models.CharField(max_length=80)
    target_type = models.CharField(max_length=60, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    request_summary = models.JSONField(default=dict, blank=True)
    response_summary = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SUCCESS)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="activity_org_created")]

    def __str__(self) -> str:
        return f"{self.action} by {self.user_id or self.token_id} at {self.created_at:%Y-%m-%d %H:%M}"


class UsageRecord(models.Model):
    """One priced LLM call, written in the same transaction as the step that made it."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="usage_records")
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

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="daily_usage")
    date = models.DateField()
    agent_id = models.UUIDField(null=True, blank=True)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=120)
    llm_calls = models.PositiveIntegerField(default=0)
    tokens_input = models.PositiveBigIntegerField(default=0)
    tokens_output = models.PositiveBigIntegerField(default=0)
    tokens_cached = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)

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

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="usage_periods")
    period_start = models.DateField()
    period_end = models.DateField()  # exclusive
    included_runs = models.PositiveIntegerField()
    included_tokens = models.PositiveBigIntegerField()
    runs_used = models.PositiveIntegerField(default=0)
    tokens_used = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)

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

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="alerts")
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
