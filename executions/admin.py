from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from executions.models import Execution, ExecutionLog, ExecutionStep, PlatformEvent

STEP_FIELDS: list[str] = [
    "step_number", "step_type", "status", "summary", "tool_name", "tool_input", "tool_output", "provider",
    "model", "tokens_used", "cost", "duration_ms", "started_at",
]  # fmt: skip
LOG_FIELDS: list[str] = ["timestamp", "level", "message", "metadata"]


class StepInline(admin.TabularInline):
    """The trace, step by step: what the model thought, which tool it called, what came back."""

    model = ExecutionStep
    extra = 0
    can_delete = False
    ordering = ["step_number"]
    fields = tuple(STEP_FIELDS)
    readonly_fields = STEP_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="reasoning / output")
    def summary(self, step: ExecutionStep) -> str:
        text = step.output_text or step.reasoning or step.input_text
        return text[:500]


class LogInline(admin.TabularInline):
    model = ExecutionLog
    extra = 0
    can_delete = False
    fields = tuple(LOG_FIELDS)
    readonly_fields = LOG_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": "executions.view_execution", "cancel": "executions.cancel_execution"}
    list_display = [
        "id", "agent", "version_label", "status_badge", "trigger_type", "tokens_total", "cost", "duration_ms",
        "created_at",
    ]  # fmt: skip
    list_filter = ["status", "trigger_type", "created_at"]
    search_fields = ["id", "agent__name", "error", "idempotency_key"]
    date_hierarchy = "created_at"
    list_select_related = ["agent", "agent_version"]
    readonly_fields = [
        "id", "organization", "agent", "agent_version", "status", "trigger_type", "trigger_data", "triggered_by_user",
        "parent", "input", "output", "error", "error_code", "error_details", "retry_count", "tokens_input",
        "tokens_output", "tokens_total", "llm_calls", "tool_calls", "cost", "cpu_time_ms", "memory_peak_mb",
        "warnings", "created_at", "started_at", "completed_at", "duration_ms", "wait_until", "lease_owner",
    ]  # fmt: skip
    exclude = ["config", "triggered_by_token", "idempotency_key", "actions_taken", "lease_expires_at"]
    inlines = [StepInline, LogInline]
    actions = ["cancel_selected"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Viewing the change page is how the trace is read; nothing on it is editable.
        return self.has_module_permission(request) and request.method in ("GET", "HEAD")

    @admin.display(description="version")
    def version_label(self, execution: Execution) -> str:
        return execution.agent_version.version

    @admin.display(description="status", ordering="status")
    def status_badge(self, execution: Execution) -> str:
        colour = {"completed": "#1f8a4c", "failed": "#c0362c", "timed_out": "#c0362c", "running": "#2f5bea"}.get(
            execution.status, "#5b6475"
        )
        return format_html('<b style="color:{}">{}</b>', colour, execution.status)

    @admin.action(description="Cancel selected executions")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Execution]) -> None:
        from config.api.errors import ApiError
        from executions.services import execution_cancel

        done = 0
        for execution in queryset:
            try:
                execution_cancel(
                    execution=execution, actor=self.actor_for(request, execution.organization_id, "cancel")
                )
                done += 1
            except (ApiError, PermissionDenied) as refused:
                message = getattr(refused, "message", refused)
                self.message_user(request, f"{execution.pk}: not cancelled: {message}", messages.ERROR)
        self.message_user(request, f"Cancelled {done} execution(s).", messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PlatformEvent)
class PlatformEventAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": "executions.view_execution"}
    list_display = ["created_at", "organization", "event_type", "agent_id", "execution_id"]
    list_filter = ["event_type"]
    date_hierarchy = "created_at"

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# --- Triggers and events out -----------------------------------------------------------------
# Rows change through the same services as the API (executions.triggers, executions.webhooks),
# so the admin cannot save a schedule beat would not run or a URL deliveries may not reach.

from executions.admin_triggers import (  # noqa: E402, F401  (registers the ModelAdmins)
    ScheduledExecutionAdmin,
    TriggerAttemptAdmin,
    WebhookDeliveryAdmin,
    WebhookEndpointAdmin,
)
