from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from accounts.access import Actor
from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin, api_validated
from config.crypto import mask
from config.forms import BoundedJSONField
from config.json_schema import schema_problems
from tools import services
from tools.api.serializers import (
    HttpToolInputSerializer,
    HttpToolUpdateSerializer,
    ModuleEndpointInputSerializer,
    ModuleEndpointUpdateSerializer,
)
from tools.mcp import admin as mcp_admin  # registers the MCP servers' pages
from tools.models import AgentCapabilityGrant, EmailDraft, ModuleEndpoint, Notification, Task, Tool, ToolCall

__all__ = ["mcp_admin"]

GRANT = "tools.grant_capabilities"
ENDPOINTS = "tools.change_tool"  # the API's rule for module-endpoints/


class ToolForm(forms.ModelForm):
    # Secrets are write-only here: the stored value is never put back into the page.
    new_secret_headers = BoundedJSONField(
        required=False,
        help_text='Replace the secret headers: {"Authorization": "Bearer …"}. Leave empty to keep them; {} clears.',
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    class Meta:
        model = Tool
        fields = [
            "organization", "name", "display_name", "description", "category", "parameters_schema", "returns_schema",
            "handler_type", "handler_config", "requires_permissions", "requires_modules", "rate_limit_per_minute",
            "rate_limit_per_hour", "timeout_seconds", "is_idempotent", "is_dangerous", "untrusted_output", "is_system",
            "is_active",
        ]  # fmt: skip

    # The same checks as the API: no remote $ref, patterns RE2 can run, no endless loops.
    def clean_parameters_schema(self) -> Any:
        return self._checked_schema("parameters_schema")

    def clean_returns_schema(self) -> Any:
        return self._checked_schema("returns_schema")

    def _checked_schema(self, field: str) -> Any:
        schema = self.cleaned_data.get(field)
        if schema is not None and (problems := schema_problems(schema)):
            raise forms.ValidationError(problems)
        return schema

    def save(self, commit: bool = True) -> Tool:
        tool = super().save(commit=False)
        value = self.cleaned_data.get("new_secret_headers")
        if value is not None:
            tool.secret_headers = json.dumps(value) if value else ""
        if commit:
            tool.save()
        return tool


# What an organization writes about its own HTTP tools: the API's fields (tools/ POST, PATCH).
HTTP_TOOL_FIELDS = (
    "display_name", "description", "category", "parameters_schema", "returns_schema", "requires_permissions",
    "rate_limit_per_minute", "rate_limit_per_hour", "timeout_seconds", "is_idempotent", "is_dangerous",
    "untrusted_output", "is_active",
)  # fmt: skip


class HttpToolForm(ToolForm):
    """An organization's HTTP tool, as the API takes it: no handler type, module, internal
    handler or system flag to choose; the URL, method and headers, checked by the SSRF guard
    (the schemas checked as ToolForm does)."""

    url = forms.CharField(max_length=2000, help_text="http(s) URL; {arg} takes that argument, URL-encoded.")
    method = forms.ChoiceField(choices=[(m, m) for m in ("POST", "GET", "PUT", "PATCH", "DELETE")], initial="POST")
    headers = BoundedJSONField(required=False, initial=dict, help_text='Plain headers: {"Accept": "application/json"}.')

    class Meta(ToolForm.Meta):
        fields = ["organization", "name", *HTTP_TOOL_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.instance.handler_config or {}
        for key in ("url", "method", "headers"):
            if key in config:
                self.initial[key] = config[key]
        if self.instance._state.adding:
            self.initial.setdefault("untrusted_output", True)  # as the API's default for a new HTTP tool


@admin.register(Tool)
class ToolAdmin(OrganizationScopedAdmin):
    form = ToolForm
    api_permissions = {
        "view": "tools.view_tool",
        "add": "tools.add_tool",
        "change": "tools.change_tool",
        "delete": "tools.delete_tool",
    }
    list_display = ["name", "category", "handler_type", "organization", "is_dangerous", "is_system", "is_active"]
    list_filter = ["category", "handler_type", "is_dangerous", "untrusted_output", "is_system", "is_active"]
    search_fields = ["name", "display_name", "description"]
    readonly_fields = ["secret_headers_masked", "created_at", "updated_at"]

    @admin.display(description="secret headers")
    def secret_headers_masked(self, obj: Tool) -> str:
        if not obj.secret_headers:
            return "-"
        return ", ".join(f"{k}: {mask(v)}" for k, v in json.loads(obj.secret_headers).items())

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if not self._is_platform(request):
            kwargs["form"] = HttpToolForm  # organizations make HTTP tools only, as through the API
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is not None and not self._is_platform(request):
            fields = ["organization", "name", "handler_type", *fields]  # a tool's name is how agents call it
        return fields

    def _theirs(self, request, obj: Any) -> bool:
        # Built-in tools are the platform's, an MCP server's tools its sync's: organization
        # admins change neither here (an MCP server's page is where its tools come from).
        return (
            obj is None or self._is_platform(request) or (obj.organization_id is not None and obj.mcp_server_id is None)
        )

    def has_change_permission(self, request, obj: Any = None) -> bool:
        return self._theirs(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj: Any = None) -> bool:
        return self._theirs(request, obj) and super().has_delete_permission(request, obj)

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> Tool:
        assert actor is not None  # superusers save the row themselves
        names = [*HTTP_TOOL_FIELDS, "url", "method", "headers"] + ([] if change else ["name"])
        data = {
            name: form.cleaned_data[name]
            for name in names
            if name in form.cleaned_data and (not change or name in form.changed_data)
        }
        if data.get("headers") is None:
            data.pop("headers", None)
        if form.cleaned_data.get("new_secret_headers") is not None:
            data["secret_headers"] = form.cleaned_data["new_secret_headers"]
        if change:
            valid = api_validated(HttpToolUpdateSerializer, data, partial=True)
            return services.http_tool_update(actor=actor, tool=Tool.objects.get(pk=form.instance.pk), data=valid)
        return services.http_tool_create(actor=actor, data=api_validated(HttpToolInputSerializer, data))

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: Tool) -> None:
        assert actor is not None
        services.http_tool_delete(actor=actor, tool=obj)


@admin.register(ToolCall)
class ToolCallAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": "tools.view_tool"}
    list_display = ["tool_name", "status", "agent", "execution", "duration_ms", "started_at"]
    list_filter = ["status", "tool_name"]
    search_fields = ["tool_name", "error_message"]
    list_select_related = ["agent"]
    date_hierarchy = "started_at"


@admin.register(AgentCapabilityGrant)
class AgentCapabilityGrantAdmin(OrganizationScopedAdmin):
    """Set as through ``PUT agents/{id}/capabilities/`` (``tools.grant_capabilities``)."""

    api_permissions = {"view": "tools.view_tool", "add": GRANT, "change": GRANT}
    list_display = ["agent", "organization", "capabilities", "updated_at"]
    list_select_related = ["agent", "organization"]
    readonly_fields = ["updated_by", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["organization", "agent", *self.readonly_fields] if obj is not None else list(self.readonly_fields)

    def save_model(self, request, obj, form, change) -> None:
        if self._is_platform(request):
            obj.updated_by = request.user
        super().save_model(request, obj, form, change)

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> AgentCapabilityGrant:
        assert actor is not None  # superusers save the row themselves
        agent = form.instance.agent if change else form.cleaned_data["agent"]
        return services.capabilities_set(actor=actor, agent=agent, capabilities=list(form.cleaned_data["capabilities"]))


class ModuleEndpointForm(forms.ModelForm):
    new_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current secret.",
    )

    class Meta:
        model = ModuleEndpoint
        fields = ["organization", "module", "base_url", "auth_header", "config", "is_active"]

    def save(self, commit: bool = True) -> ModuleEndpoint:
        endpoint = super().save(commit=False)
        if self.cleaned_data.get("new_secret"):
            endpoint.secret = self.cleaned_data["new_secret"]
        if commit:
            endpoint.save()
        return endpoint


@admin.register(ModuleEndpoint)
class ModuleEndpointAdmin(OrganizationScopedAdmin):
    """Changed as through ``module-endpoints/``: the base URL passes the SSRF guard."""

    form = ModuleEndpointForm
    api_permissions = {"view": ENDPOINTS, "add": ENDPOINTS, "change": ENDPOINTS, "delete": ENDPOINTS}
    list_display = ["module", "organization", "base_url", "secret_masked", "is_active"]
    list_filter = ["module", "is_active"]
    readonly_fields = ["secret_masked"]

    @admin.display(description="secret")
    def secret_masked(self, obj: ModuleEndpoint) -> str:
        return mask(obj.secret) or "-"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["organization", "module", *self.readonly_fields] if obj is not None else list(self.readonly_fields)

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> ModuleEndpoint:
        assert actor is not None  # superusers save the row themselves
        names = (
            ("base_url", "auth_header", "config", "is_active")
            if change
            else ("module", "base_url", "auth_header", "config", "is_active")
        )
        data = {name: form.cleaned_data[name] for name in names if name in form.cleaned_data}
        if form.cleaned_data.get("new_secret"):
            data["secret"] = form.cleaned_data["new_secret"]
        if change:
            endpoint = ModuleEndpoint.objects.get(pk=form.instance.pk)
            valid = api_validated(ModuleEndpointUpdateSerializer, data, partial=True)
            return services.module_endpoint_save(actor=actor, data=valid, endpoint=endpoint)
        return services.module_endpoint_save(actor=actor, data=api_validated(ModuleEndpointInputSerializer, data))

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: ModuleEndpoint) -> None:
        assert actor is not None
        services.module_endpoint_delete(actor=actor, endpoint=obj)


@admin.register(Task)
class TaskAdmin(OrganizationScopedAdmin):
    """What agents produced; the API changes none of it, so organization admins look only."""

    list_display = ["title", "status", "priority", "due_date", "assigned_to", "agent", "created_at"]
    list_filter = ["status", "priority"]
    search_fields = ["title", "description"]
    list_select_related = ["assigned_to", "agent"]


@admin.register(EmailDraft)
class EmailDraftAdmin(OrganizationScopedAdmin):
    """What agents produced; the API changes none of it, so organization admins look only."""

    list_display = ["subject", "agent", "created_at"]
    search_fields = ["subject", "body"]
    list_select_related = ["agent"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = ["channel", "user", "title", "created_at", "read_at"]
    list_filter = ["channel"]
    list_select_related = ["user"]
