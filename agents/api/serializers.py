"""Input serializers check types and refuse unknown fields; the services check meaning
(ranges, catalog, cron, JSON Schema) so the admin and the API share one validation."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from types import SimpleNamespace
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.db.models import JSONField, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.access import GRANT_CODENAMES
from agents.config import LIMIT_FIELDS, agent_draft_view, agent_version_config
from agents.models import Agent, AgentTemplate, AgentVersion
from agents.selectors import (
    agent_has_unpublished_changes,
    agent_row_has_unpublished_changes,
    agent_runtime_state,
    agent_stats,
)
from agents.services.versions import BUMPS
from config.api.inputs import StrictSerializer
from config.api.rows import iso_datetime, json_value, page_rows, select_columns


def _text(max_length: int = 100_000) -> serializers.CharField:
    return serializers.CharField(required=False, allow_blank=True, max_length=max_length, trim_whitespace=False)


def _names() -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(max_length=120, allow_blank=True), required=False)


class ModelConfigInputSerializer(StrictSerializer):
    provider = serializers.CharField(max_length=40, required=False)
    model = serializers.CharField(max_length=120, required=False)
    temperature = serializers.FloatField(required=False)
    max_tokens = serializers.IntegerField(required=False)
    top_p = serializers.FloatField(required=False, allow_null=True)
    fallbacks = serializers.ListField(child=serializers.DictField(), required=False)
    extra = serializers.DictField(required=False)
    connection_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="A provider connection (connections/) of the organization or the platform to call the model "
        "through; null: the platform's key for the provider.",
    )

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if value.get("connection_id") is not None:
            value["connection_id"] = str(value["connection_id"])  # stored in JSON as text
        return value


class LimitsInputSerializer(StrictSerializer):
    max_steps_per_run = serializers.IntegerField(required=False)
    max_tool_calls_per_step = serializers.IntegerField(required=False)
    timeout_seconds = serializers.IntegerField(required=False)
    max_runs_per_hour = serializers.IntegerField(required=False)
    max_runs_per_day = serializers.IntegerField(required=False)


class AgentInputSerializer(StrictSerializer):
    """The agent body of API.md. Limits may be sent nested (``limits``) or at the top level,
    as the reference's columns were."""

    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=200, required=False, allow_blank=True)
    description = _text(5000)
    avatar_url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    agent_type = serializers.CharField(required=False, max_length=16)
    domain = serializers.CharField(required=False, allow_blank=True, max_length=80)
    capabilities = serializers.ListField(
        child=serializers.CharField(max_length=120, allow_blank=True),
        required=False,
        help_text="Descriptive tags of what the agent is for (e.g. lead_qualification); they grant nothing. "
        "What its tools may touch is granted apart, with PUT agents/{id}/capabilities/.",
    )
    allowed_tools = serializers.ListField(
        child=serializers.CharField(max_length=120, allow_blank=True),
        required=False,
        help_text="Tool names or patterns (crm_*) the agent may call. A tool that needs a capability "
        "(requires_permissions) is offered only once it is granted with PUT agents/{id}/capabilities/; "
        "the agent's warnings list those that are not.",
    )
    personality = serializers.JSONField(required=False, help_text="Text, or {traits, tone, behavior, language_style}.")
    system_prompt = _text()
    instructions = _text()
    goals = serializers.ListField(child=serializers.JSONField(), required=False)
    constraints = serializers.ListField(child=serializers.JSONField(), required=False)
    examples = serializers.ListField(child=serializers.JSONField(), required=False)
    model_config = ModelConfigInputSerializer(required=False)
    limits = LimitsInputSerializer(required=False)
    max_steps_per_run = serializers.IntegerField(required=False, write_only=True)
    max_tool_calls_per_step = serializers.IntegerField(required=False, write_only=True)
    timeout_seconds = serializers.IntegerField(required=False, write_only=True)
    max_runs_per_hour = serializers.IntegerField(required=False, write_only=True)
    max_runs_per_day = serializers.IntegerField(required=False, write_only=True)
    tools = serializers.ListField(
        child=serializers.CharField(max_length=120, allow_blank=True),
        required=False,
        write_only=True,
        help_text="The reference's name for allowed_tools (send one or the other).",
    )
    denied_tools = _names()
    trigger_events = _names()
    trigger_schedule = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=120)
    trigger_timezone = serializers.CharField(required=False, max_length=64)
    trigger_conditions = serializers.DictField(required=False)
    input_schema = serializers.JSONField(required=False, allow_null=True)
    output_schema = serializers.JSONField(required=False, allow_null=True)
    visibility = serializers.CharField(required=False, max_length=16)
    metadata = serializers.DictField(required=False)
    memory = serializers.DictField(
        required=False, help_text="Conversation memory: {context_window (tokens), max_history (messages)}."
    )
    type_config = serializers.DictField(
        required=False,
        help_text="What the agent's type adds: orchestrator {managed_agents, delegation_rules}, analyst "
        "{report_templates, default_report}, guardian {watched_agents, monitoring_rules}; none for "
        "assistant and specialist.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "tools" in attrs:
            if "allowed_tools" in attrs and attrs["allowed_tools"] != attrs["tools"]:
                raise serializers.ValidationError({"tools": ["Send tools or allowed_tools, not two different lists."]})
            attrs["allowed_tools"] = attrs.pop("tools")
        top_level = {key: attrs.pop(key) for key in LIMIT_FIELDS if key in attrs}
        if top_level:
            attrs["limits"] = {**attrs.get("limits", {}), **top_level}
        return attrs


class GoalProgressInputSerializer(StrictSerializer):
    value = serializers.DecimalField(max_digits=18, decimal_places=4)
    recorded_at = serializers.DateTimeField(required=False)


class AgentFromTemplateSerializer(AgentInputSerializer):
    template = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=200, required=False)


class PublishInputSerializer(StrictSerializer):
    version = serializers.CharField(max_length=32, required=False, allow_blank=True)
    changelog = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")
    bump = serializers.ChoiceField(choices=BUMPS, required=False, default="minor")


class RollbackInputSerializer(StrictSerializer):
    version = serializers.CharField(max_length=32)


class GrantInputSerializer(StrictSerializer):
    user = serializers.CharField(max_length=254, help_text="The user's id, username or email.")
    permission = serializers.ChoiceField(choices=list(GRANT_CODENAMES))


class RevokeInputSerializer(StrictSerializer):
    user = serializers.CharField(max_length=254)
    permission = serializers.ChoiceField(choices=list(GRANT_CODENAMES), required=False)


class GrantSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    permission = serializers.ChoiceField(choices=list(GRANT_CODENAMES))
    granted_by = serializers.CharField(allow_null=True)
    granted_at = serializers.DateTimeField()


class CopyInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)


class ConfigurationInputSerializer(StrictSerializer):
    overrides = serializers.DictField()
    is_active = serializers.BooleanField(required=False, default=True)


# --- Output ----------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.OBJECT)
class _ObjectField(serializers.SerializerMethodField):
    pass


class AgentSerializer(serializers.ModelSerializer):
    """An agent as listed: the draft configuration, lifecycle, runtime state and stats.
    Everything comes from the row and its select_related current version: no query per row."""

    model_config = _ObjectField()
    limits = _ObjectField()
    stats = _ObjectField()
    memory = _ObjectField()
    current_version = serializers.CharField(source="current_version.version", default=None, read_only=True)
    runtime_state = serializers.SerializerMethodField()
    has_unpublished_changes = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.get_username", default=None, read_only=True)
    is_platform = serializers.BooleanField(read_only=True)

    class Meta:
        model = Agent
        fields = [
            "id", "organization_id", "is_platform", "name", "slug", "description", "avatar_url", "agent_type",
            "domain", "capabilities", "personality", "system_prompt", "instructions", "goals", "constraints",
            "examples", "model_config", "limits", "allowed_tools", "denied_tools", "trigger_events",
            "trigger_schedule", "trigger_timezone", "trigger_conditions", "input_schema", "output_schema",
            "memory", "type_config", "visibility", "metadata", "status", "is_active", "current_version", "current_version_id",
            "runtime_state", "has_unpublished_changes", "stats", "created_by", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance: Agent) -> dict[str, Any]:
        """The fields above, read straight off the row (and its select_related version and
        creator): the generic path, a bound field per column with a ``get_attribute`` and a
        ``to_representation`` each, was most of the CPU of a page of 50. Same output; a test
        pins it against the generic path (tests/agents/test_list_fast.py)."""
        version = instance.current_version
        creator = instance.created_by
        return _agent_data(
            instance,
            draft=agent_draft_view(instance),
            version=None if version is None else version.version,
            creator=None if creator is None else creator.get_username(),
            unpublished=agent_has_unpublished_changes(instance),
            tz=timezone.get_current_timezone(),
        )

    def get_model_config(self, agent: Agent) -> dict[str, Any]:
        return agent_draft_view(agent)["model_config"]

    def get_memory(self, agent: Agent) -> dict[str, Any]:
        return dict(agent.memory_config or {})

    def get_limits(self, agent: Agent) -> dict[str, Any]:
        return {name: getattr(agent, name) for name in LIMIT_FIELDS}

    def get_stats(self, agent: Agent) -> dict[str, Any]:
        return agent_stats(agent)

    def get_runtime_state(self, agent: Agent) -> str:
        return agent_runtime_state(agent)

    def get_has_unpublished_changes(self, agent: Agent) -> bool:
        return agent_has_unpublished_changes(agent)


def _agent_data(
    a: Any, *, draft: dict[str, Any], version: Any, creator: Any, unpublished: bool, tz: tzinfo
) -> dict[str, Any]:
    """An agent as AgentSerializer writes it, from any object with the row's attributes (a
    model instance, or a listed row), its draft (``agent_draft_view``) and what the row
    itself does not hold."""
    return {
        "id": str(a.id),
        "organization_id": a.organization_id,
        "is_platform": a.organization_id is None,
        "name": a.name,
        "slug": a.slug,
        "description": a.description,
        "avatar_url": a.avatar_url,
        "agent_type": a.agent_type,
        "domain": a.domain,
        "capabilities": [str(x) for x in a.capabilities],
        "personality": a.personality,
        "system_prompt": a.system_prompt,
        "instructions": a.instructions,
        "goals": a.goals,
        "constraints": a.constraints,
        "examples": a.examples,
        "model_config": draft["model_config"],
        "limits": {name: getattr(a, name) for name in LIMIT_FIELDS},
        "allowed_tools": [str(x) for x in a.allowed_tools],
        "denied_tools": [str(x) for x in a.denied_tools],
        "trigger_events": [str(x) for x in a.trigger_events],
        "trigger_schedule": a.trigger_schedule,
        "trigger_timezone": a.trigger_timezone,
        "trigger_conditions": a.trigger_conditions,
        "input_schema": a.input_schema,
        "output_schema": a.output_schema,
        "memory": dict(a.memory_config or {}),
        "type_config": a.type_config,
        "visibility": a.visibility,
        "metadata": a.metadata,
        "status": a.status,
        "is_active": a.is_active,
        "current_version": None if version is None else str(version),
        "current_version_id": a.current_version_id,
        "runtime_state": agent_runtime_state(a),
        "has_unpublished_changes": unpublished,
        "stats": agent_stats(a),
        "created_by": None if creator is None else str(creator),
        "created_at": iso_datetime(a.created_at, tz),
        "updated_at": iso_datetime(a.updated_at, tz),
    }


# What a listed agent is written from (agent_list_data), in this order: its columns, then its
# current version's label and stored configuration (its JSON as text: decoded once per
# version, agents.selectors.agent_version_part) and its creator's name.
_ROW_COLUMNS = (
    "id", "organization_id", "name", "slug", "description", "avatar_url", "agent_type", "domain",
    "capabilities", "personality", "system_prompt", "instructions", "goals", "constraints", "examples",
    "llm_provider", "llm_model", "temperature", "max_tokens", "top_p", "llm_fallbacks", "llm_extra",
    "llm_connection_id", *LIMIT_FIELDS, "allowed_tools", "denied_tools", "trigger_events", "trigger_schedule",
    "trigger_timezone", "trigger_conditions", "input_schema", "output_schema", "memory_config", "type_config",
    "visibility", "metadata", "status", "is_active", "active_runs", "current_version_id", "total_runs",
    "successful_runs", "failed_runs", "cancelled_runs", "total_tokens_used", "total_actions_taken", "total_cost",
    "avg_response_time_ms", "last_run_at", "last_run_status", "last_error", "created_at", "updated_at",
)  # fmt: skip
# Come as text (jsonb), decoded by config.api.rows.json_value.
_JSON_AT = tuple(i for i, name in enumerate(_ROW_COLUMNS) if isinstance(Agent._meta.get_field(name), JSONField))
_USER = get_user_model()
_USERNAME_COLUMN = next(f.column for f in _USER._meta.concrete_fields if f.name == _USER.USERNAME_FIELD)
# Names from the models' metadata only; the page's ids are the ORM's statement and parameters.
_SELECT = (
    f'SELECT {select_columns("a", Agent, _ROW_COLUMNS)}, v."version", v."config",'  # noqa: S608
    f' u."{_USERNAME_COLUMN}"'
    f' FROM {{ids}} JOIN "{Agent._meta.db_table}" a ON a."id" = page.id'
    f' LEFT JOIN "{AgentVersion._meta.db_table}" v ON v."id" = a."current_version_id"'
    f' LEFT JOIN "{_USER._meta.db_table}" u ON u."{_USER._meta.pk.column}" = a."created_by_id" ORDER BY page.n'
)


def agent_list_rows(queryset: QuerySet[Agent], offset: int, limit: int) -> list[tuple]:
    """The page of ``queryset`` as agent_list_data reads it (config.api.rows.page_rows)."""
    return page_rows(queryset, _SELECT, offset, limit)


def agent_list_data(rows: Iterable[tuple]) -> list[dict[str, Any]]:
    """Rows of ``agent_list_rows`` as AgentSerializer writes them (tests/agents/test_list_fast.py
    pins it for every kind of agent). The runtime state is agents.selectors.agent_runtime_state's
    rule, the one with_runtime_state annotates."""
    tz = timezone.get_current_timezone()
    width = len(_ROW_COLUMNS)
    data = []
    for row in rows:
        values = list(row[:width])
        for i in _JSON_AT:
            values[i] = json_value(values[i])
        a = SimpleNamespace(**dict(zip(_ROW_COLUMNS, values, strict=True)))
        version, config_text, creator = row[width:]
        draft = agent_draft_view(cast(Agent, a))  # the row has the attributes the draft view reads
        unpublished = agent_row_has_unpublished_changes(draft, a.current_version_id, config_text)
        data.append(_agent_data(a, draft=draft, version=version, creator=creator, unpublished=unpublished, tz=tz))
    return data


class AgentDetailSerializer(AgentSerializer):
    """One agent: also the caller's rights on it and the non-blocking warnings of its draft."""

    access = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()
    recent_executions = serializers.SerializerMethodField(
        help_text="The agent's latest runs, newest first (the full list: agents/{id}/executions/)."
    )

    class Meta(AgentSerializer.Meta):
        fields = [*AgentSerializer.Meta.fields, "access", "warnings", "recent_executions"]
        read_only_fields = fields

    # One agent a request: the generic path, which also writes the fields added here.
    to_representation = serializers.ModelSerializer.to_representation  # type: ignore[assignment]

    def get_access(self, agent: Agent) -> list[str]:
        return sorted(self.context.get("rights", ()))

    def get_warnings(self, agent: Agent) -> list[str]:
        return list(self.context.get("warnings", []))

    def get_recent_executions(self, agent: Agent) -> list[dict[str, Any]]:
        return list(self.context.get("recent_executions", []))


class AgentVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.get_username", default=None, read_only=True)
    is_deprecated = serializers.SerializerMethodField()

    class Meta:
        model = AgentVersion
        fields = [
            "id", "agent_id", "version", "changelog", "created_by", "published_at", "is_current",
            "deprecated_at", "is_deprecated",
        ]  # fmt: skip
        read_only_fields = fields

    def get_is_deprecated(self, version: AgentVersion) -> bool:
        return version.deprecated_at is not None


class AgentVersionDetailSerializer(AgentVersionSerializer):
    config = _ObjectField()

    class Meta(AgentVersionSerializer.Meta):
        fields = [*AgentVersionSerializer.Meta.fields, "config"]
        read_only_fields = fields

    def get_config(self, version: AgentVersion) -> dict[str, Any]:
        return agent_version_config(version)


class MarketplaceAgentSerializer(serializers.ModelSerializer):
    """What anyone may see of a public agent: its description, not its stats or its people."""

    current_version = serializers.CharField(source="current_version.version", read_only=True)
    published_at = serializers.DateTimeField(source="current_version.published_at", read_only=True)
    publisher = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = [
            "id", "name", "description", "avatar_url", "agent_type", "domain", "capabilities", "status",
            "current_version", "published_at", "publisher",
        ]  # fmt: skip
        read_only_fields = fields

    def get_publisher(self, agent: Agent) -> str:
        return agent.organization.name if agent.organization is not None else "Agentry platform"


class MarketplaceAgentDetailSerializer(MarketplaceAgentSerializer):
    config = _ObjectField()

    class Meta(MarketplaceAgentSerializer.Meta):
        fields = [*MarketplaceAgentSerializer.Meta.fields, "config"]
        read_only_fields = fields

    def get_config(self, agent: Agent) -> dict[str, Any]:
        return agent_version_config(agent.current_version)  # type: ignore[arg-type]


class PlatformAgentSerializer(MarketplaceAgentSerializer):
    configuration = _ObjectField()

    class Meta(MarketplaceAgentSerializer.Meta):
        fields = [*MarketplaceAgentSerializer.Meta.fields, "configuration"]
        read_only_fields = fields

    def get_configuration(self, agent: Agent) -> dict[str, Any] | None:
        found = getattr(agent, "org_configurations", None)
        if not found:
            return None
        return {"overrides": found[0].overrides, "is_active": found[0].is_active, "updated_at": found[0].updated_at}


class AgentTemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentTemplate
        fields = ["id", "key", "name", "agent_type", "description", "config"]
        read_only_fields = fields
