from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin import OrganizationAdmin
from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from accounts.models import Organization
from billing.charts import usage_dashboard
from billing.models import Alert, DailyUsage, ModelPrice, Plan, UsagePeriod, UsageRecord
from billing.pricing import clear_price_cache

# accounts registers the organization's page; billing adds its usage page and link to it.
# accounts never imports billing, so the extension is made here (accounts' admin is loaded
# first: it is earlier in INSTALLED_APPS).
admin.site.unregister(Organization)


@admin.register(Organization)
class OrganizationWithUsageAdmin(OrganizationAdmin):
    fields = [*OrganizationAdmin.fields, "usage_link"]
    readonly_fields = ["usage_link"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["usage_link", *super().get_readonly_fields(request, obj)]

    @admin.display(description="usage")
    def usage_link(self, obj: Organization) -> str:
        if not obj.pk:
            return "-"
        return format_html('<a href="{}">Usage, cost and top agents</a>', reverse("admin:billing_usage", args=[obj.pk]))

    def get_urls(self):
        return [
            path("<uuid:organization_id>/usage/", self.admin_site.admin_view(self.usage_view), name="billing_usage"),
            *super().get_urls(),
        ]

    def usage_view(self, request: HttpRequest, organization_id: str) -> TemplateResponse:
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
        clear_price_cache()  # this process at once; the others within a minute


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": "billing.view_usage"}
    list_display = ["created_at", "organization", "provider", "model", "tokens_input", "tokens_output", "cost",
                    "priced_by_default", "execution"]  # fmt: skip
    list_filter = ["provider", "priced_by_default", "purpose"]
    date_hierarchy = "created_at"
    raw_id_fields = ["execution", "agent", "user"]


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": "billing.view_usage"}
    list_display = ["date", "organization", "agent_id", "provider", "model", "llm_calls", "tokens_input",
                    "tokens_output", "cost"]  # fmt: skip
    list_filter = ["provider"]
    date_hierarchy = "date"


@admin.register(UsagePeriod)
class UsagePeriodAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": "billing.view_usage"}
    list_display = ["organization", "period_start", "period_end", "runs_used", "included_runs", "tokens_used",
                    "included_tokens", "cost"]  # fmt: skip


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": "billing.view_usage"}
    list_display = ["created_at", "organization", "kind", "threshold", "message", "read_at"]
    list_filter = ["kind"]
