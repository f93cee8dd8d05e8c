"""Chain executions in the admin: read-only with every step attempt; cancel is an action."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from agents.models import ChainExecution, ChainStepRun
from config.api.errors import ApiError
from executions.chains.services import chain_execution_cancel


class StepRunInline(admin.TabularInline):
    model = ChainStepRun
    extra = 0
    can_delete = False
    fields = (
        "step_id", "attempt", "fallback_for", "status", "execution", "error", "tokens", "cost", "started_at",
        "completed_at",
    )  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChainExecution)
class ChainExecutionAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": "executions.view_execution", "cancel": "executions.cancel_execution"}
    list_display = ["id", "chain", "status", "failed_step", "tokens_total", "cost", "created_at", "duration_ms"]
    list_filter = ["status"]
    list_select_related = ["chain"]
    date_hierarchy = "created_at"
    exclude = ["lease_owner", "lease_expires_at", "idempotency_key"]
    inlines = [StepRunInline]
    actions = ["cancel_selected"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The change page is how a run is read; nothing on it is editable.
        return self.has_module_permission(request) and request.method in ("GET", "HEAD")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Cancel the selected chain executions")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[ChainExecution]) -> None:
        done = 0
        for run in queryset:
            try:
                chain_execution_cancel(
                    chain_execution=run, actor=self.actor_for(request, run.organization_id, "cancel")
                )
                done += 1
            except (ApiError, PermissionDenied) as refused:
                self.message_user(
                    request, f"{run.pk}: not cancelled: {getattr(refused, 'message', refused)}", messages.ERROR
                )
        self.message_user(request, f"Cancelled {done} chain execution(s).", messages.SUCCESS)
