from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path

from billing.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from billing.models import (
    ActivityLog,
    Alert,
    ApiToken,
    DailyUsage,
    Membership,
    ModelPrice,
    Organization,
    Plan,
    UsagePeriod,
    UsageRecord,
)


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

    readonly_fields = ["usage_link"]

    @admin.display(description="usage")
    def usage_link(self, obj: Organization) -> str:
        from django.urls import reverse
        from django.utils.html import format_html

        if not obj.pk:
            return "-"
        return format_html('<a href="{}">Usage, cost and top agents</a>', reverse("admin:billing_usage", args=[obj.pk]))

    def get_urls(self):
        return [
            path("<uuid:organization_id>/usage/", self.admin_site.admin_view(self.usage_view), name="billing_usage"),
            *super().get_urls(),
        ]

    def usage_view(self, request: HttpRequest, organization_id: str) -> TemplateResponse:
        from django.http import Http404

        from billing.charts import usage_dashboard

        organization = self.get_queryset(request).filter(pk=organization_id).first()
        if organization is None:
            raise Http404
        context = {
            **self.admin_site.each_context(request),
            "organization": organization,
            "opts": self.model._meta,
            "title": f"Usage of {organization.name}",
            **usage_dashboard(organization),
        }
        return TemplateResponse(request, "admin/billing/organization/usage.html", context)


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


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """Plans are the platform's: only superusers see and edit them."""

    list_display = ["name", "slug", "price_usd", "included_runs", "included_tokens", "allow_overage", "max_agents",
                    "is_default"]  # fmt: skip

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.has_module_permission(request)


@admin.register(ModelPrice)
class ModelPriceAdmin(PlanAdmin):
    list_display = ["provider", "model", "input_per_million", "output_per_million", "cached_input_per_million",
                    "effective_from"]  # fmt: skip
    list_filter = ["provider"]
    search_fields = ["model"]
    list_editable = ["input_per_million", "output_per_million", "cached_input_per_million"]

    def save_model(self, request: HttpRequest, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        from billing.pricing import clear_price_cache

        clear_price_cache()  # this process at once; the others within a minute


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = ["created_at", "organization", "provider", "model", "tokens_input", "tokens_output", "cost",
                    "priced_by_default", "execution"]  # fmt: skip
    list_filter = ["provider", "priced_by_default", "purpose"]
    date_hierarchy = "created_at"
    raw_id_fields = ["execution", "agent", "user"]


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = ["date", "organization", "agent_id", "provider", "model", "llm_calls", "tokens_input",
                    "tokens_output", "cost"]  # fmt: skip
    list_filter = ["provider"]
    date_hierarchy = "date"


@admin.register(UsagePeriod)
class UsagePeriodAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = ["organization", "period_start", "period_end", "runs_used", "included_runs", "tokens_used",
                    "included_tokens", "cost"]  # fmt: skip


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    list_display = ["created_at", "organization", "kind", "threshold", "message", "read_at"]
    list_filter = ["kind"]
