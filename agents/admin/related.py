"""Versions (read-only), goals, platform-agent configurations and templates."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from accounts.access import Actor
from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from agents import services
from agents.admin.forms import AgentConfigurationForm
from agents.models import (
    Agent,
    AgentConfiguration,
    AgentGoal,
    AgentTemplate,
    AgentVersion,
)


@admin.register(AgentVersion)
class AgentVersionAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    """Published versions never change: read-only here, as everywhere."""

    organization_path = "agent__organization"
    api_permissions = {"view": "agents.view_agent"}
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
    api_permissions = {"view": "agents.view_agent"}
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


@admin.register(AgentConfiguration)
class AgentConfigurationAdmin(OrganizationScopedAdmin):
    """An organization's overrides of a platform agent: set and removed as through
    ``platform-agents/{id}/configuration/`` (managers of all agents)."""

    form = AgentConfigurationForm
    api_permissions = {
        "view": "agents.view_agent",
        "add": "agents.manage_all_agents",
        "change": "agents.manage_all_agents",
        "delete": "agents.manage_all_agents",
    }
    list_display = ["agent", "organization", "is_active", "updated_at"]
    list_filter = ["is_active"]
    list_select_related = ["agent", "organization"]
    search_fields = ["agent__name", "organization__name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["organization", "agent"] if obj is not None else []

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        if db_field.name == "agent":
            kwargs["queryset"] = Agent.objects.filter(organization__isnull=True, deleted_at__isnull=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> AgentConfiguration:
        assert actor is not None  # superusers save the row themselves
        agent = form.instance.agent if change else form.cleaned_data["agent"]
        return services.agent_configuration_set(
            actor=actor, agent=agent, overrides=form.cleaned_data["overrides"], is_active=form.cleaned_data["is_active"]
        )

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: AgentConfiguration) -> None:
        assert actor is not None
        services.agent_configuration_delete(actor=actor, agent=obj.agent)


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
