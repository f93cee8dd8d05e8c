"""The agent admin: list, actions, version history, goals and grants inline, the diff view."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.access import Actor
from accounts.admin_scoping import OrganizationScopedAdmin, admin_actor, admin_memberships
from agents import selectors, services
from agents.access import visible_agents_q
from agents.admin.forms import AgentAdminForm
from agents.config import LIVE_FIELDS, VERSIONED_FIELDS
from agents.models import (
    Agent,
    AgentGoal,
    AgentUserObjectPermission,
    AgentVersion,
)
from config.api.errors import ApiError

VERSION_COLUMNS = ("version", "is_current", "published_at", "created_by", "deprecated_at", "changelog", "diff")
GOAL_COLUMNS = (
    "name", "priority", "success_metric", "comparison", "target_value", "window", "is_recurring", "deadline",
    "current_value", "is_achieved", "achieved_at", "evaluated_at",
)  # fmt: skip
GRANT_COLUMNS = ("user", "permission", "granted_by", "granted_at")


class ShownWithTheAgent:
    """Inlines follow their agent: whoever may open the agent here (the admin scoping has
    decided that) sees them, whatever Django model permissions say."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)


class AgentVersionInline(ShownWithTheAgent, admin.TabularInline):
    model = AgentVersion
    extra = 0
    can_delete = False
    fields = VERSION_COLUMNS
    readonly_fields = VERSION_COLUMNS
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
    fields = GOAL_COLUMNS
    readonly_fields = GOAL_COLUMNS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AgentGrantInline(ShownWithTheAgent, admin.TabularInline):
    model = AgentUserObjectPermission
    fk_name = "content_object"
    extra = 0
    fields = GRANT_COLUMNS
    readonly_fields = GRANT_COLUMNS
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
    api_permissions = {
        "view": "agents.view_agent",
        "add": "agents.add_agent",
        "change": "agents.change_agent",
        "delete": "agents.delete_agent",
    }
    platform_uses_services = True
    list_display = [
        "name", "owner", "agent_type", "status", "version", "is_active", "runtime_state", "total_runs",
        "success_rate", "avg_cost", "last_run_at", "run_link",
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
                    "type_config",
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
        ("Memory", {"fields": ["memory_config"], "classes": ["collapse"]}),
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

    # --- saving through the services (as the organization admin, with their role's rights) ---

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> Agent:
        data = {key: value for key, value in form.agent_config.items() if key in (*LIVE_FIELDS, *VERSIONED_FIELDS)}
        if change:
            original = Agent.objects.get(pk=form.instance.pk)
            return services.agent_update(actor=actor, agent=original, data=data, by_user=request.user)
        organization = form.cleaned_data.get("organization")
        return services.agent_create(actor=actor, data=data, organization=organization, by_user=request.user)

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: Agent) -> None:
        services.agent_delete(actor=actor, agent=obj, by_user=request.user)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # agent_delete only marks the agent deleted: its versions, runs and history stay, so
        # nothing else is listed, and the runs' hold on its versions does not stop it.
        names = [str(agent) for agent in objs]
        return names, {self.model._meta.verbose_name_plural: len(names)}, set(), []

    def scope(self, queryset: Any, request: HttpRequest) -> Any:
        """An organization admin sees the agents their role sees through the API (with the
        default roles: all of their organizations' agents)."""
        if self._is_platform(request):
            return queryset
        visible = Q(pk__in=[])
        for organization_id in admin_memberships(request):
            visible |= visible_agents_q(admin_actor(request, organization_id))
        return queryset.filter(visible)

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

    @admin.display(description="run")
    def run_link(self, agent: Agent) -> str:
        # The console's playground (console/views.py), by URL name: agents never imports it.
        if agent.organization_id is None:
            return "—"  # platform agents run in an organization, through its configuration
        return format_html('<a href="{}">Run…</a>', reverse("console-playground", args=[agent.pk]))

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
                run(agent, self.actor_for(request, agent.organization_id, "change"))
                done += 1
            except (ApiError, PermissionDenied) as exc:
                self.message_user(request, f"{agent.name}: {getattr(exc, 'message', exc)}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} agent(s).", messages.SUCCESS)

    @admin.action(description="Publish the drafts of the selected agents (next minor version)")
    def publish_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._each(
            request,
            queryset,
            "Published",
            lambda a, actor: services.agent_publish(
                actor=actor, agent=a, changelog="Published from the admin.", by_user=request.user
            ),
        )

    @admin.action(description="Activate the selected agents (triggers on)")
    def activate_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._each(
            request,
            queryset,
            "Activated",
            lambda a, actor: services.agent_activate(actor=actor, agent=a, by_user=request.user),
        )

    @admin.action(description="Deactivate the selected agents (triggers off)")
    def deactivate_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._each(
            request,
            queryset,
            "Deactivated",
            lambda a, actor: services.agent_deactivate(actor=actor, agent=a, by_user=request.user),
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
