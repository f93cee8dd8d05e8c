"""Provider connections in the admin: the key is write-only (a password field, never shown)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from accounts.access import Actor
from accounts.admin_scoping import OrganizationScopedAdmin, managed_organization_ids
from agents.models import ProviderConnection
from agents.services.connections import (
    provider_connection_create,
    provider_connection_delete,
    provider_connection_update,
)


class ProviderConnectionForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave empty to keep the current key. Only its last four characters are shown.",
    )

    class Meta:
        model = ProviderConnection
        fields = [
            "organization", "provider", "name", "base_url", "api_key", "default_model", "available_models",
            "is_default", "is_active", "requests_per_minute", "tokens_per_minute", "openai_organization",
        ]  # fmt: skip

    def save(self, commit: bool = True) -> ProviderConnection:
        connection = super().save(commit=False)
        if self.cleaned_data.get("api_key"):
            connection.set_api_key(self.cleaned_data["api_key"])
        if commit:
            connection.save()
        return connection


MANAGE = "billing.manage_provider_connections"


@admin.register(ProviderConnection)
class ProviderConnectionAdmin(OrganizationScopedAdmin):
    """Organization admins change their connections through the API's services (validated,
    logged); the platform's connections are read-only to them."""

    form = ProviderConnectionForm
    api_permissions = {"view": MANAGE, "add": MANAGE, "change": MANAGE, "delete": MANAGE}
    list_display = ["provider", "name", "organization", "masked_key", "default_model", "is_default", "is_active"]
    list_filter = ["provider", "is_default", "is_active"]
    search_fields = ["name", "provider", "default_model"]
    readonly_fields = ["masked_key"]

    @admin.display(description="key")
    def masked_key(self, obj: ProviderConnection) -> str:
        return f"…{obj.key_last4}" if obj.key_last4 else "(none)"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = admin.ModelAdmin.get_queryset(self, request)
        if self._is_platform(request):
            return qs
        # Organization admins see their own connections and, read-only, the platform's.
        return qs.filter(Q(organization_id__in=managed_organization_ids(request)) | Q(organization__isnull=True))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.organization_id is None:
            return self.role_allows(request, "view")  # the platform's, shown to every organization
        return super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.organization_id is None:
            return self._is_platform(request)
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.organization_id is None:
            return self._is_platform(request)
        return super().has_delete_permission(request, obj)

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> ProviderConnection:
        names = form.changed_data if change else ProviderConnectionForm.Meta.fields
        data = {name: form.cleaned_data[name] for name in names if name in form.cleaned_data and name != "organization"}
        if not form.cleaned_data.get("api_key"):
            data.pop("api_key", None)  # empty: keep the current key
        if change:
            current = ProviderConnection.objects.get(pk=form.instance.pk)
            return provider_connection_update(actor=actor, connection=current, data=data)
        return provider_connection_create(actor=actor, data=data)

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: ProviderConnection) -> None:
        provider_connection_delete(actor=actor, connection=obj)
