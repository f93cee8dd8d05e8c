"""What an agent IS: its draft configuration, its immutable published versions, its goals,
platform templates and per-organization overrides of platform agents, and per-user grants.

Three notions are kept apart (DESIGN.md §4, §14):
- ``status`` is the lifecycle: draft → published → deprecated → archived;
- ``is_active`` says whether triggers (cron, events, webhooks) may start the agent;
- the runtime state (idle, busy, error, offline) is derived, never stored as a word
  (see ``agents.selectors.with_runtime_state``).

The agent row holds the *draft*: every edit lands here. Publishing snapshots the versioned
fields (``agents.config.VERSIONED_FIELDS``) into an ``AgentVersion`` that never changes again;
executions always run a version, never the draft.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from guardian.models import UserObjectPermissionBase

from billing.catalog import DEFAULT_MODEL, DEFAULT_PROVIDER
from config.crypto import decrypt, encrypt
from config.errors import DomainError


class AgentType(models.TextChoices):
    ASSISTANT = "assistant", "Assistant"
    SPECIALIST = "specialist", "Specialist"
    ORCHESTRATOR = "orchestrator", "Orchestrator"
    ANALYST = "analyst", "Analyst"
    GUARDIAN = "guardian", "Guardian"


class AgentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    DEPRECATED = "deprecated", "Deprecated"
    ARCHIVED = "archived", "Archived"


class Visibility(models.TextChoices):
    PRIVATE = "private", "Private"
    TEAM = "team", "Team"
    ORGANIZATION = "organization", "Organization"
    PUBLIC = "public", "Public"


class RuntimeState(models.TextChoices):
    IDLE = "idle", "Idle"
    BUSY = "busy", "Busy"
    ERROR = "error", "Error"
    OFFLINE = "offline", "Offline"


# Defaults of the core reference (ai_agents): gpt-4o, 0.7, 4096 tokens, 10 steps,
# 3 tool calls per step, 120 s, 60 runs/hour, 500 runs/day, inactive until activated.
DEFAULT_TEMPERATURE = Decimal("0.70")
DEFAULT_MAX_TOKENS = 4096
DEFAULT_LIMITS = {
    "max_steps_per_run": 10,
    "max_tool_calls_per_step": 3,
    "timeout_seconds": 120,
    "max_runs_per_hour": 60,
    "max_runs_per_day": 500,
}


def _tags() -> ArrayField:
    return ArrayField(models.CharField(max_length=120), default=list, blank=True)


class Agent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # NULL = a platform agent, managed by superusers, usable by every organization through
    # an AgentConfiguration of its own.
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="agents"
    )

    # Identity (live: not versioned).
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220)
    description = models.TextField(blank=True)
    avatar_url = models.URLField(max_length=500, blank=True)
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.ORGANIZATION)
    metadata = models.JSONField(default=dict, blank=True)

    # Behaviour (versioned: snapshotted into AgentVersion.config on publish).
    agent_type = models.CharField(max_length=16, choices=AgentType.choices, default=AgentType.ASSISTANT)
    domain = models.CharField(max_length=80, blank=True)
    capabilities = _tags()
    # Free text, or {"traits": [...], "tone": ..., "behavior": ..., "language_style": ...};
    # rendered by agents.prompting.render_personality.
    personality = models.JSONField(default=str, blank=True)
    system_prompt = models.TextField(blank=True)
    instructions = models.TextField(blank=True)
    goals = models.JSONField(default=list, blank=True)
    constraints = models.JSONField(default=list, blank=True)
    examples = models.JSONField(default=list, blank=True)

    # Model configuration (exposed as the nested ``model_config`` object).
    llm_provider = models.CharField(max_length=40, default=DEFAULT_PROVIDER)
    llm_model = models.CharField(max_length=120, default=DEFAULT_MODEL)
    temperature = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=DEFAULT_TEMPERATURE,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("2"))],
    )
    max_tokens = models.PositiveIntegerField(default=DEFAULT_MAX_TOKENS)
    top_p = models.DecimalField(max_digits=3, decimal_places=2, null=True, blank=True)
    # Ordered [{"provider": ..., "model": ...}]: tried in turn when the primary fails.
    llm_fallbacks = models.JSONField(default=list, blank=True)
    # Provider-specific parameters from an allowed list (agents.validation.EXTRA_PARAMETERS).
    llm_extra = models.JSONField(default=dict, blank=True)
    # A specific provider connection (its own key/endpoint); else the organization's default.
    llm_connection = models.ForeignKey(
        "agents.ProviderConnection", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Execution limits (exposed as the nested ``limits`` object).
    max_steps_per_run = models.PositiveIntegerField(default=DEFAULT_LIMITS["max_steps_per_run"])
    max_tool_calls_per_step = models.PositiveIntegerField(default=DEFAULT_LIMITS["max_tool_calls_per_step"])
    timeout_seconds = models.PositiveIntegerField(default=DEFAULT_LIMITS["timeout_seconds"])
    max_runs_per_hour = models.PositiveIntegerField(default=DEFAULT_LIMITS["max_runs_per_hour"])
    max_runs_per_day = models.PositiveIntegerField(default=DEFAULT_LIMITS["max_runs_per_day"])

    # Tool access: names or wildcards ("crm_*"); denied wins over allowed.
    allowed_tools = _tags()
    denied_tools = _tags()

    # Triggers.
    trigger_events = _tags()  # event type patterns, "crm.contact.*"
    trigger_schedule = models.CharField(max_length=120, blank=True)  # 5-field cron
    trigger_timezone = models.CharField(max_length=64, default="UTC")
    trigger_conditions = models.JSONField(default=dict, blank=True)

    input_schema = models.JSONField(null=True, blank=True)
    output_schema = models.JSONField(null=True, blank=True)
    # Conversation memory of this agent: {"context_window": tokens, "max_history": messages};
    # a key left out falls back to MEMORY_HISTORY_MAX_TOKENS / _MESSAGES (the API's ``memory``).
    memory_config = models.JSONField(default=dict, blank=True, db_default={})
    # What the agent's type adds (agents/types.py): an orchestrator's managed_agents and
    # delegation_rules, an analyst's report_templates, a guardian's watched_agents and
    # monitoring_rules. Versioned like the rest of the behaviour.
    type_config = models.JSONField(default=dict, blank=True, db_default={})

    # Lifecycle and switches.
    status = models.CharField(max_length=16, choices=AgentStatus.choices, default=AgentStatus.DRAFT, db_index=True)
    is_active = models.BooleanField(default=False)
    current_version = models.ForeignKey(
        "agents.AgentVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    copied_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    template = models.ForeignKey(
        "agents.AgentTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="agents"
    )

    # Stats: the execution runtime updates these with F() expressions in the transaction
    # that finishes a run (agents.services.agent_stats_record_run); nothing recounts them.
    total_runs = models.PositiveIntegerField(default=0)
    successful_runs = models.PositiveIntegerField(default=0)
    failed_runs = models.PositiveIntegerField(default=0)  # timed out runs count as failed
    cancelled_runs = models.PositiveIntegerField(default=0)
    total_tokens_used = models.BigIntegerField(default=0)
    total_actions_taken = models.PositiveIntegerField(default=0)
    total_cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    total_duration_ms = models.BigIntegerField(default=0)
    avg_response_time_ms = models.PositiveIntegerField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_status = models.CharField(max_length=20, blank=True)
    last_error = models.TextField(blank=True)
    # Runs started and not yet finished; > 0 means busy.
    active_runs = models.PositiveIntegerField(default=0)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        permissions = [
            ("execute_agent", "Can execute agent"),
            ("admin_agent", "Can administer agent (grants, delete)"),
        ]
        constraints = [
            # Names are unique per organization among live agents, whatever the case;
            # a soft-deleted agent frees its name. NULL organizations (platform agents)
            # need their own constraint because NULLs never collide in a unique index.
            models.UniqueConstraint(
                Lower("name"),
                "organization",
                condition=models.Q(deleted_at__isnull=True, organization__isnull=False),
                name="agent_unique_name_per_org",
            ),
            models.UniqueConstraint(
                Lower("name"),
                condition=models.Q(deleted_at__isnull=True, organization__isnull=True),
                name="agent_unique_platform_name",
            ),
            models.UniqueConstraint(
                "organization",
                "slug",
                condition=models.Q(deleted_at__isnull=True),
                name="agent_unique_slug_per_org",
            ),
            models.CheckConstraint(
                condition=models.Q(temperature__gte=0) & models.Q(temperature__lte=2),
                name="agent_temperature_range",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status"], name="agent_org_status"),
            models.Index(fields=["organization", "-updated_at"], name="agent_org_updated"),
            # The API's list: live agents of one organization in their default order.
            models.Index(
                fields=["organization", "name", "id"],
                name="agent_org_name_live",
                condition=models.Q(deleted_at__isnull=True),
            ),
            models.Index(
                fields=["organization", "-created_at", "-id"],
                name="agent_org_created_live",
                condition=models.Q(deleted_at__isnull=True),
            ),
            models.Index(
                fields=["is_active"], name="agent_active", condition=models.Q(is_active=True, deleted_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_platform(self) -> bool:
        return self.organization_id is None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class PublishedVersionImmutable(DomainError):
    """A published version row was saved again; the API answers 409 VersionConflict."""

    code = "VersionConflict"


class AgentVersion(models.Model):
    """An immutable snapshot of an agent's configuration. Only ``is_current`` and
    ``deprecated_at`` ever change after creation (and only through queryset updates)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=32)
    # Numeric parts so "1.10.0" sorts after "1.9.0".
    major = models.PositiveIntegerField()
    minor = models.PositiveIntegerField()
    patch = models.PositiveIntegerField()
    config = models.JSONField()
    changelog = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField()
    is_current = models.BooleanField(default=False)
    deprecated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-major", "-minor", "-patch"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "version"], name="agentversion_unique_version"),
            models.UniqueConstraint(
                fields=["agent"], condition=models.Q(is_current=True), name="agentversion_one_current"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} v{self.version}"

    def save(self, *args, **kwargs) -> None:
        # A published version never changes; the services only ever insert rows and flip
        # is_current / deprecated_at with queryset updates.
        if not self._state.adding:
            raise PublishedVersionImmutable(f"Version {self.version} is published and cannot change.")
        super().save(*args, **kwargs)


class AgentUserObjectPermission(UserObjectPermissionBase):
    """django-guardian grants on one agent (direct foreign key: fast joins, cascades).

    Grant words map to codenames: read → view_agent, write → change_agent,
    execute → execute_agent, admin → admin_agent.
    """

    content_object = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="user_grants")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "agent grant"


class AgentTemplate(models.Model):
    """A starting configuration, platform-wide; ``agents/from-template/`` copies it into a draft."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    agent_type = models.CharField(max_length=16, choices=AgentType.choices)
    description = models.TextField(blank=True)
    # The same shape as the API's agent body (model_config and limits nested).
    config = models.JSONField(default=dict)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent_type", "name"]

    def __str__(self) -> str:
        return self.name


class AgentConfiguration(models.Model):
    """An organization's overrides of a platform agent (model, limits, instructions, ...)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="agent_configurations"
    )
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="configurations")
    overrides = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "agent"], name="agentconfiguration_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agent} for {self.organization}"


class ProviderConnection(models.Model):
    """A provider endpoint and key: platform-wide (no organization) or an organization's own.

    The key is encrypted at rest (config/crypto.py) and only its last four characters are
    ever shown. One connection per organization and provider may be the default; an agent
    may name a specific one in ``model_config.connection_id``. ``available_models`` extends
    the catalog for this provider (self-hosted servers, new models) when agents are validated.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="provider_connections"
    )
    provider = models.CharField(max_length=40)
    name = models.CharField(max_length=100, blank=True)
    base_url = models.URLField(max_length=500, blank=True)
    api_key_encrypted = models.TextField(blank=True)
    key_last4 = models.CharField(max_length=4, blank=True)
    default_model = models.CharField(max_length=120, blank=True)
    available_models = models.JSONField(default=list, blank=True)
    # OpenAI only: the organization id (org-...) sent with each call as the SDK's
    # ``organization`` (the OpenAI-Organization header), for keys that belong to several.
    openai_organization = models.CharField(max_length=100, blank=True, default="", db_default="")
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    # Enforced in Redis before each call; null = no limit.
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "provider"],
                condition=models.Q(is_default=True),
                name="one_default_connection_per_provider",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        owner = self.organization_id or "platform"
        return f"{self.provider} {self.name or ''} ({owner})".replace("  ", " ")

    @property
    def api_key(self) -> str:
        return decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""

    def set_api_key(self, raw: str) -> None:
        self.api_key_encrypted = encrypt(raw) if raw else ""
        self.key_last4 = raw[-4:] if raw else ""


# Chains and goals live in their own modules; importing them here keeps ``agents.models.X`` working.
from agents.models.chains import (  # noqa: E402
    CHAIN_TERMINAL,
    STEP_SETTLED,
    AgentChain,
    ChainExecution,
    ChainRunStatus,
    ChainStatus,
    ChainStepRun,
    StepRunStatus,
)
from agents.models.goals import AgentGoal, GoalComparison, GoalProgress, GoalWindow  # noqa: E402

__all__ = [
    "CHAIN_TERMINAL",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_TEMPERATURE",
    "STEP_SETTLED",
    "Agent",
    "AgentChain",
    "AgentConfiguration",
    "AgentGoal",
    "AgentStatus",
    "AgentTemplate",
    "AgentType",
    "AgentUserObjectPermission",
    "AgentVersion",
    "ChainExecution",
    "ChainRunStatus",
    "ChainStatus",
    "ChainStepRun",
    "GoalComparison",
    "GoalProgress",
    "GoalWindow",
    "ProviderConnection",
    "RuntimeState",
    "StepRunStatus",
    "Visibility",
]
