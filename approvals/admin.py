from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.access import Actor
from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin, api_validated
from approvals.api.serializers import RiskRuleSerializer
from approvals.models import ApprovalRequest, RiskRule
from approvals.services import risk_rule_delete, risk_rule_save

RULES_READ = "approvals.view_approvalrequest"
RULES_WRITE = "approvals.change_riskrule"
RULE_FIELDS = (
    "organization", "pattern", "risk_level", "count_field", "count_threshold", "threshold_risk_level",
    "description", "position", "is_active",
)  # fmt: skip


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    """Read-only: decisions are made on the approver pages or the API, which resume or
    cancel the run; editing the row here would do neither."""

    api_permissions = {"view": RULES_READ}

    list_display = ["action_type", "risk_level", "status", "agent", "created_at", "expires_at", "resolved_by"]
    list_filter = ["status", "risk_level"]
    search_fields = ["action_type", "action_description"]
    list_select_related = ["agent", "resolved_by"]
    date_hierarchy = "created_at"


@admin.register(RiskRule)
class RiskRuleAdmin(OrganizationScopedAdmin):
    """Changed as through ``approval-rules/``: the same checks, logged."""

    api_permissions = {"view": RULES_READ, "add": RULES_WRITE, "change": RULES_WRITE, "delete": RULES_WRITE}
    fields = RULE_FIELDS
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

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["organization"] if obj is not None else []

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> RiskRule:
        assert actor is not None  # superusers save the row themselves
        rule = RiskRule.objects.get(pk=form.instance.pk) if change else None
        names = [name for name in RULE_FIELDS if name != "organization"]
        data = {name: form.cleaned_data[name] for name in names if name in form.cleaned_data}
        valid = api_validated(RiskRuleSerializer, data, partial=change, instance=rule)
        return risk_rule_save(actor=actor, data=valid, rule=rule)

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: RiskRule) -> None:
        assert actor is not None
        risk_rule_delete(actor=actor, rule=obj)
