from __future__ import annotations

from django.contrib import admin

from billing.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from billing.models import ActivityLog, ApiToken, Membership, Organization


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "id"
    list_display = ["name", "slug", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]

    def has_add_permission(self, request) -> bool:
        return self._is_platform(request)  # only the platform creates tenants

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._is_platform(request)


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email", "organization__slug"]


@admin.register(ApiToken)
class ApiTokenAdmin(OrganizationScopedAdmin):
    """Only the prefix is ever shown; the hash is not a field here and the value is never stored."""

    list_display = ["prefix", "name", "user", "organization", "scopes", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["organization"]
    search_fields = ["prefix", "name", "user__username"]
    fields = [
        "prefix",
        "name",
        "user",
        "organization",
        "scopes",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "created_at",
    ]
    readonly_fields = ["prefix", "user", "organization", "scopes", "last_used_at", "created_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # tokens are created through the API or `create_api_token`, shown once

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset) -> None:
        from billing.services import api_token_revoke

        for token in queryset:
            api_token_revoke(token=token)


@admin.register(ActivityLog)
class ActivityLogAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = ["created_at", "organization", "action", "user", "status", "target_type", "target_id"]
    list_filter = ["status", "action"]
    search_fields = ["action", "target_id", "request_id"]
    date_hierarchy = "created_at"
