from __future__ import annotations

from django.contrib import admin

from approvals.models import ApprovalRequest, RiskRule
from billing.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    """Read-only: decisions are made on the approver pages or the API, which resume or
    cancel the run; editing the row here would do neither."""

    list_display = ["action_type", "risk_level", "status", "agent", "created_at", "expires_at", "resolved_by"]
    list_filter = ["status", "risk_level"]
    search_fields = ["action_type", "action_description"]
    list_select_related = ["agent", "resolved_by"]
    date_hierarchy = "created_at"


@admin.register(RiskRule)
class RiskRuleAdmin(OrganizationScopedAdmin):
    list_display = [
        "pattern",
        "risk_level",
        "count_field",
        "count_threshold",
        "threshold_risk_level",
        "organization",
        "is_active",
    ]
    list_filter = ["risk_level", "is_active"]
    search_fields = ["pattern", "description"]
