"""The tenant: organizations, their members and roles, API tokens and the activity log.

These models lived in ``billing`` until issue #15; their tables keep the names they had
(``billing_organization``, ...), so the move changed no data (accounts.0001 is state-only).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.roles import Role, permissions_for


class Organization(models.Model):
    """The tenant and billing account. Every tenant-owned row points here."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    is_active = models.BooleanField(default=True)
    # A string reference: billing builds on accounts, so accounts never imports billing.
    plan = models.ForeignKey(
        "billing.Plan", null=True, blank=True, on_delete=models.PROTECT, related_name="organizations"
    )
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
        db_table = "billing_organization"
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
        db_table = "billing_membership"
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
        db_table = "billing_apitoken"
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
        db_table = "billing_activitylog"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="activity_org_created")]

    def __str__(self) -> str:
        return f"{self.action} by {self.user_id or self.token_id} at {self.created_at:%Y-%m-%d %H:%M}"
