"""Admin for operators: agents with their versions, goals and grants; templates; overrides.

Edits go through the same validation and services as the API (``agents.services``), so the
admin cannot save what the API would refuse, and changes are logged and emitted alike.
Platform agents (no organization) are visible and editable by superusers only: the scoping
of OrganizationScopedAdmin leaves them out of every organization admin's queryset.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.forms.models import construct_instance
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from agents import selectors, services
from agents.config import LIVE_FIELDS, MODEL_CONFIG_COLUMNS, VERSIONED_FIELDS, agent_draft_config, flatten
from agents.models import (
    Agent,
    AgentConfiguration,
    AgentGoal,
    AgentStatus,
    AgentTemplate,
    AgentUserObjectPermission,
    AgentVersion,
)
from agents.services.common import ensure_name_free
from agents.services.platform import agent_configuration_validate
from agents.validation import agent_config_validate
from billing.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from config.api.errors import ApiError

# API field path -> the admin form field that holds it.
_FIELD_FOR = {f"model_config.{key}": column for key, column in MODEL_CONFIG_COLUMNS.items()}


def _form_field(path_: str) -> str:
    if path_ in _FIELD_FOR:
        return _FIELD_FOR[path_]
    head = path_.split(".")[0]
    if head == "limits":
        return path_.split(".")[1] if "." in path_ else head
    if head == "model_config":
        return _FIELD_FOR.get(".".join(path_.split(".")[:2]), "llm_provider")
    return head


_EDITABLE = [
    "organization", "name", "slug", "description", "avatar_url", "visibility", "metadata", "agent_type", "domain",
    "capabilities", "personality", "system_prompt", "instructions", "goals", "constraints", "examples",
    "llm_provider", "llm_model", "temperature", "max_tokens", "top_p", "llm_fallbacks", "llm_extra",
    "max_steps_per_run", "max_tool_calls_per_step", "timeout_seconds", "max_runs_per_hour", "max_runs_per_day",
    "allowed_tools", "denied_tools", "trigger_events", "trigger_schedule", "trigger_timezone", "trigger_conditions",
    "input_schema", "output_schema",
]  # fmt: skip
_VERSION_COLUMNS = ("version", "is_current", "published_at", "created_by", "deprecated_at", "changelog", "diff")
_GOAL_COLUMNS = (
    "name", "priority", "success_metric", "comparison", "target_value", "window", "is_recurring", "deadline",
    "current_value", "is_achieved", "achieved_at", "evaluated_at",
)  # fmt: skip
_GRANT_COLUMNS = ("user", "permission", "granted_by", "granted_at")


class PersonalityField(forms.CharField):
    """Plain text, or a JSON object of traits/tone/behavior/language_style: operators type
    prose without having to quote it as a JSON string."""

    widget = forms.Textarea

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return value

    def to_python(self, value: Any) -> Any:
        text = (super().to_python(value) or "").strip()
        if text.startswith("{"):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise forms.ValidationError(f"Looks like JSON but is not valid: {exc}") from exc
        return text


class AgentAdminForm(forms.ModelForm):
    personality = PersonalityField(
        required=False, help_text='Text, or a JSON object such as {"traits": ["calm"], "tone": "warm"}.'
    )
    avatar_url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    slug = forms.SlugField(required=False, max_length=200, help_text="Made from the name when left empty.")

    class Meta:
        model = Agent
        fields = _EDITABLE

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        candidate = copy.copy(self.instance)
        construct_instance(self, candidate)
        original = self.instance
        # UUID primary keys are set before the first save: ask the state, not the pk.
        existing = None if original._state.adding else Agent.objects.get(pk=original.pk)
        if existing is not None and existing.status == AgentStatus.ARCHIVED:
            raise forms.ValidationError("An archived agent is read-only.")
        config = agent_draft_config(candidate)
        try:
            agent_config_validate(config)
            if existing is None or candidate.name.lower() != existing.name.lower():
                ensure_name_free(
                    organization_id=candidate.organization_id,
                    name=candidate.name.strip(),
                    exclude_pk=existing.pk if existing else None,
                )
        except ApiError as exc:
            errors = exc.details.get("validation_errors") or {"name": [exc.message]}
            for field_path, problems in errors.items():
                field = _form_field(field_path)
                for problem in problems:
                    message = problem if field == field_path else f"{field_path}: {problem}"
                    self.add_error(field if field in self.fields else None, message)
        if existing is not None and existing.status == AgentStatus.DEPRECATED:
            before = flatten(agent_draft_config(existing))
            after = flatten(config)
            if any(before[k] != after[k] for k in before if k.split(".")[0] in VERSIONED_FIELDS):
                raise forms.ValidationError("A deprecated agent only moves to archived; its configuration is frozen.")
        self.agent_config = config
        return cleaned


class ShownWithTheAgent:
    """Inlines follow their agent: whoever may open the agent here (the admin scoping has
    decided that) sees them, whatever Django model permissions say."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)


class AgentVersionInline(ShownWithTheAgent, admin.TabularInline):
    model = AgentVersion
    extra = 0
    can_delete = False
    fields = _VERSION_COLUMNS
    readonly_fields = _VERSION_COLUMNS
    ordering = ["-major", "-minor", "-patch"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="diff")
    def diff(self, version: AgentVersion) -> str:
        url = reverse("admin:agents_agent_diff", args=[version.agent_id])
        return format_html('<a href="{}?from={}&to=draft">vs draft</a>', url, version.version)


class AgentGoalInline(ShownWithTheAgent, admin.TabularInline):
    """Goals are edited in the ``goals`` field; here they are shown with their evaluation."""

    model = AgentGoal
    extra = 0
    can_delete = False
    fields = _GOAL_COLUMNS
    readonly_fields = _GOAL_COLUMNS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AgentGrantInline(ShownWithTheAgent, admin.TabularInline):
    model = AgentUserObjectPermission
    fk_name = "content_object"
    extra = 0
    fields = _GRANT_COLUMNS
    readonly_fields = _GRANT_COLUMNS
    verbose_name_plural = "grants (managed through the API: agents/{id}/permissions/)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PlatformFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("platform", "Platform agents"), ("organizations", "Organization agents")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "platform":
            return queryset.filter(organization__isnull=True)
        if self.value() == "organizations":
            return queryset.filter(organization__isnull=False)
        return queryset


@admin.register(Agent)
class AgentAdmin(OrganizationScopedAdmin):
    form = AgentAdminForm
    list_display = [
        "name", "owner", "agent_type", "status", "version", "is_active", "runtime_state", "total_runs",
        "success_rate", "avg_cost", "last_run_at",
    ]  # fmt: skip
    list_filter = ["agent_type", "status", "is_active", "llm_provider", "visibility", PlatformFilter]
    list_select_related = ["organization", "current_version"]
    search_fields = ["name", "slug", "description", "domain"]
    inlines = [AgentVersionInline, AgentGoalInline, AgentGrantInline]
    actions = ["publish_selected", "activate_selected", "deactivate_selected"]
    readonly_fields = [
        "status", "is_active", "current_version", "runtime_state", "diff_link", "total_runs", "successful_runs",
        "failed_runs", "cancelled_runs", "total_tokens_used", "total_actions_taken", "total_cost",
        "avg_response_time_ms", "last_run_at", "last_run_status", "last_error", "created_by", "created_at",
        "updated_at", "deleted_at",
    ]  # fmt: skip
    fieldsets = [
        (
            "Identity",
            {"fields": ["organization", "name", "slug", "description", "avatar_url", "visibility", "metadata"]},
        ),
        (
            "Behaviour (versioned)",
            {
                "fields": [
                    "agent_type",
                    "domain",
                    "capabilities",
                    "personality",
                    "system_prompt",
                    "instructions",
                    "goals",
                    "constraints",
                    "examples",
                ]
            },
        ),
        (
            "Model",
            {
                "fields": [
                    "llm_provider",
                    "llm_model",
                    "temperature",
                    "max_tokens",
                    "top_p",
                    "llm_fallbacks",
                    "llm_extra",
                ]
            },
        ),
        (
            "Limits",
            {
                "fields": [
                    "max_steps_per_run",
                    "max_tool_calls_per_step",
                    "timeout_seconds",
                    "max_runs_per_hour",
                    "max_runs_per_day",
                ]
            },
        ),
        ("Tools", {"fields": ["allowed_tools", "denied_tools"]}),
        ("Triggers", {"fields": ["trigger_events", "trigger_schedule", "trigger_timezone", "trigger_conditions"]}),
        ("Schemas", {"fields": ["input_schema", "output_schema"], "classes": ["collapse"]}),
        ("Lifecycle", {"fields": ["status", "is_active", "current_version", "runtime_state", "diff_link"]}),
        (
            "Stats",
            {
                "fields": [
                    "total_runs",
                    "successful_runs",
                    "failed_runs",
                    "cancelled_runs",
                    "total_tokens_used",
                    "total_actions_taken",
                    "total_cost",
                    "avg_response_time_ms",
                    "last_run_at",
                    "last_run_status",
                    "last_error",
                ],
                "classes": ["collapse"],
            },
        ),
        ("Audit", {"fields": ["created_by", "created_at", "updated_at", "deleted_at"], "classes": ["collapse"]}),
    ]

    # --- scoping: platform agents are the superusers' only ------------------------------

    def _may_touch(self, request: HttpRequest, obj: Agent | None) -> bool:
        return obj is None or obj.organization_id is not None or self._is_platform(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._may_touch(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_touch(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is not None:
            fields.append("organization")  # an agent never moves between organizations
        return fields

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None and "organization" in form.base_fields:
            # Left empty, the agent is a platform agent: only superusers may make those.
            form.base_fields["organization"].required = not self._is_platform(request)
        return form

    # --- saving through the services ---------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Agent, form: Any, change: bool) -> None:
        data = {key: value for key, value in form.agent_config.items() if key in (*LIVE_FIELDS, *VERSIONED_FIELDS)}
        if change:
            original = Agent.objects.get(pk=obj.pk)
            saved = services.agent_update(actor=None, agent=original, data=data, by_user=request.user)
        else:
            saved = services.agent_create(actor=None, data=data, organization=obj.organization, by_user=request.user)
        # The admin goes on with ``obj`` (messages, the log, inlines): make it the saved row.
        obj.__dict__.update(saved.__dict__)

    def delete_model(self, request: HttpRequest, obj: Agent) -> None:
        services.agent_delete(actor=None, agent=obj, by_user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for agent in queryset:
            services.agent_delete(actor=None, agent=agent, by_user=request.user)

    def get_queryset(self, request: HttpRequest):
        return selectors.with_runtime_state(super().get_queryset(request).filter(deleted_at__isnull=True))

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="organization", ordering="organization__name")
    def owner(self, agent: Agent) -> str:
        return agent.organization.name if agent.organization is not None else "— platform —"

    @admin.display(description="version", ordering="current_version__major")
    def version(self, agent: Agent) -> str:
        return agent.current_version.version if agent.current_version else "—"

    @admin.display(description="runtime")
    def runtime_state(self, agent: Agent) -> str:
        return selectors.agent_runtime_state(agent)

    @admin.display(description="success %")
    def success_rate(self, agent: Agent) -> str:
        return f"{selectors.agent_stats(agent)['success_rate']:.1f}"

    @admin.display(description="avg cost")
    def avg_cost(self, agent: Agent) -> str:
        return selectors.agent_stats(agent)["avg_cost"]

    @admin.display(description="compare versions")
    def diff_link(self, agent: Agent) -> str:
        if not agent.pk:
            return "—"
        return format_html('<a href="{}">Show the diff view</a>', reverse("admin:agents_agent_diff", args=[agent.pk]))

    # --- actions ------------------------------------------------------------------------

    def _each(self, request: HttpRequest, queryset: Any, verb: str, run: Any) -> None:
        done = 0
        for agent in queryset:
            if not self._may_touch(request, agent):
                continue
            try:
                run(agent)
                done += 1
            except ApiError as exc:
                self.message_user(request, f"{agent.name}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} agent(s).", messages.SUCCESS)

    @admin.action(description="Publish the drafts of the selected agents (next minor version)")
    def publish_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._each(
            request,
            queryset,
            "Published",
            lambda a: services.agent_publish(
                actor=None, agent=a, changelog="Published from the admin.", by_user=request.user
            ),
        )

    @admin.action(description="Activate the selected agents (triggers on)")
    def activate_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._each(
            request, queryset, "Activated", lambda a: services.agent_activate(actor=None, agent=a, by_user=request.user)
        )

    @admin.action(description="Deactivate the selected agents (triggers off)")
    def deactivate_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._each(
            request,
            queryset,
            "Deactivated",
            lambda a: services.agent_deactivate(actor=None, agent=a, by_user=request.user),
        )

    # --- diff view ----------------------------------------------------------------------

    def get_urls(self):
        extra = [
            path("<uuid:object_id>/diff/", self.admin_site.admin_view(self.diff_view), name="agents_agent_diff"),
        ]
        return extra + super().get_urls()

    def diff_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        agent = self.get_queryset(request).select_related("current_version").filter(pk=object_id).first()
        if agent is None or not self.has_view_permission(request, agent):
            raise Http404("No such agent.")
        versions = list(selectors.agent_version_list(agent=agent))
        default_from = versions[1].version if len(versions) > 1 else (versions[0].version if versions else "draft")
        default_to = versions[0].version if len(versions) > 1 else "draft"
        from_ref = request.GET.get("from") or default_from
        to_ref = request.GET.get("to") or default_to
        try:
            diff = selectors.agent_version_diff(agent=agent, from_ref=from_ref, to_ref=to_ref)
            error = None
        except ApiError as exc:
            diff, error = None, exc.message
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Compare versions of {agent.name}",
            "agent": agent,
            "refs": ["draft", *(v.version for v in versions)],
            "from_ref": from_ref,
            "to_ref": to_ref,
            "diff": diff,
            "error": error,
        }
        return TemplateResponse(request, "admin/agents/agent/diff.html", context)


@admin.register(AgentVersion)
class AgentVersionAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    """Published versions never change: read-only here, as everywhere."""

    organization_path = "agent__organization"
    list_display = ["agent", "version", "is_current", "published_at", "created_by", "deprecated_at"]
    list_filter = ["is_current"]
    list_select_related = ["agent", "created_by"]
    search_fields = ["agent__name", "version", "changelog"]
    readonly_fields = ["agent", "version", "changelog", "config", "created_by", "published_at", "is_current"]
    exclude = ["major", "minor", "patch"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # executions point at versions; history is not edited away


@admin.register(AgentGoal)
class AgentGoalAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    organization_path = "agent__organization"
    list_display = [
        "name", "agent", "success_metric", "comparison", "target_value", "current_value", "is_achieved",
        "achieved_at", "deadline", "evaluated_at",
    ]  # fmt: skip
    list_filter = ["is_achieved", "window", "is_recurring"]
    list_select_related = ["agent"]
    search_fields = ["name", "agent__name", "success_metric"]
    actions = ["evaluate_selected"]

    @admin.action(description="Evaluate the goals of the selected rows' agents now")
    def evaluate_selected(self, request: HttpRequest, queryset: Any) -> None:
        agents = Agent.objects.filter(pk__in=queryset.values("agent_id"))
        for agent in agents:
            services.agent_goals_evaluate(agent=agent)
        self.message_user(request, f"Evaluated the goals of {len(agents)} agent(s).", messages.SUCCESS)


class AgentConfigurationForm(forms.ModelForm):
    class Meta:
        model = AgentConfiguration
        fields = ["organization", "agent", "overrides", "is_active"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        agent = cleaned.get("agent")
        if agent is not None and "overrides" in cleaned:
            try:
                agent_configuration_validate(agent, cleaned["overrides"])
            except ApiError as exc:
                for field_path, problems in (exc.details.get("validation_errors") or {"": [exc.message]}).items():
                    self.add_error("overrides", "; ".join(f"{field_path}: {p}" for p in problems))
        return cleaned


@admin.register(AgentConfiguration)
class AgentConfigurationAdmin(OrganizationScopedAdmin):
    form = AgentConfigurationForm
    list_display = ["agent", "organization", "is_active", "updated_at"]
    list_filter = ["is_active"]
    list_select_related = ["agent", "organization"]
    search_fields = ["agent__name", "organization__name"]

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        if db_field.name == "agent":
            kwargs["queryset"] = Agent.objects.filter(organization__isnull=True, deleted_at__isnull=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(AgentTemplate)
class AgentTemplateAdmin(admin.ModelAdmin):
    """Platform-wide: superusers only."""

    list_display = ["name", "key", "agent_type", "is_active", "updated_at"]
    list_filter = ["agent_type", "is_active"]
    search_fields = ["name", "key", "description"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)
