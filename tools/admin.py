from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin

from billing.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from config.crypto import mask
from config.forms import BoundedJSONField
from config.json_schema import schema_problems
from tools.models import AgentCapabilityGrant, EmailDraft, ModuleEndpoint, Notification, Task, Tool, ToolCall


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
            "rate_limit_per_hour", "timeout_seconds", "is_idempotent", "is_dangerous", "is_system", "is_active",
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


@admin.register(Tool)
class ToolAdmin(OrganizationScopedAdmin):
    form = ToolForm
    list_display = ["name", "category", "handler_type", "organization", "is_dangerous", "is_system", "is_active"]
    list_filter = ["category", "handler_type", "is_dangerous", "is_system", "is_active"]
    search_fields = ["name", "display_name", "description"]
    readonly_fields = ["secret_headers_masked", "created_at", "updated_at"]

    @admin.display(description="secret headers")
    def secret_headers_masked(self, obj: Tool) -> str:
        if not obj.secret_headers:
            return "-"
        return ", ".join(f"{k}: {mask(v)}" for k, v in json.loads(obj.secret_headers).items())

    def has_change_permission(self, request, obj: Any = None) -> bool:
        # Built-in tools are the platform's: only superusers touch them.
        if obj is not None and obj.organization_id is None and not self._is_platform(request):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj: Any = None) -> bool:
        if obj is not None and obj.organization_id is None and not self._is_platform(request):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(ToolCall)
class ToolCallAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = ["tool_name", "status", "agent", "execution", "duration_ms", "started_at"]
    list_filter = ["status", "tool_name"]
    search_fields = ["tool_name", "error_message"]
    list_select_related = ["agent"]
    date_hierarchy = "started_at"


@admin.register(AgentCapabilityGrant)
class AgentCapabilityGrantAdmin(OrganizationScopedAdmin):
    list_display = ["agent", "organization", "capabilities", "updated_at"]
    list_select_related = ["agent", "organization"]
    readonly_fields = ["updated_by", "updated_at"]

    def save_model(self, request, obj, form, change) -> None:
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


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
    form = ModuleEndpointForm
    list_display = ["module", "organization", "base_url", "secret_masked", "is_active"]
    list_filter = ["module", "is_active"]
    readonly_fields = ["secret_masked"]

    @admin.display(description="secret")
    def secret_masked(self, obj: ModuleEndpoint) -> str:
        return mask(obj.secret) or "-"


@admin.register(Task)
class TaskAdmin(OrganizationScopedAdmin):
    list_display = ["title", "status", "priority", "due_date", "assigned_to", "agent", "created_at"]
    list_filter = ["status", "priority"]
    search_fields = ["title", "description"]
    list_select_related = ["assigned_to", "agent"]


@admin.register(EmailDraft)
class EmailDraftAdmin(OrganizationScopedAdmin):
    list_display = ["subject", "agent", "created_at"]
    search_fields = ["subject", "body"]
    list_select_related = ["agent"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = ["channel", "user", "title", "created_at", "read_at"]
    list_filter = ["channel"]
    list_select_related = ["user"]
