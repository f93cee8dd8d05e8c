from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from config.api.errors import ApiError
from executions.admin_trace import trace_context
from executions.models import Execution, PlatformEvent
from executions.services import execution_cancel


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
    actions = ["cancel_selected"]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The trace page instead of a form: a run is a record, nothing on it is editable
        (and there is no Save to press). Scoped like the change list."""
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied("A run is read-only.")
        execution = self.get_object(request, unquote(object_id))
        if execution is None or not self.has_view_permission(request, execution):
            raise Http404("No such execution.")
        started = timezone.localtime(execution.created_at)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{execution.agent.name} · {started:%Y-%m-%d %H:%M:%S}",
            "subtitle": None,
            **trace_context(execution),
            # The console's Re-run and playground (console/urls.py), by name: no import upwards.
            "run_url": reverse("console-rerun", args=[execution.pk]),
            "playground_url": reverse("console-playground", args=[execution.agent_id]),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/executions/execution/trace.html", context)

    @admin.display(description="version")
    def version_label(self, execution: Execution) -> str:
        return execution.version_label

    @admin.display(description="status", ordering="status")
    def status_badge(self, execution: Execution) -> str:
        colour = {"completed": "#1f8a4c", "failed": "#c0362c", "timed_out": "#c0362c", "running": "#2f5bea"}.get(
            execution.status, "#5b6475"
        )
        return format_html('<b style="color:{}">{}</b>', colour, execution.status)

    @admin.action(description="Cancel selected executions")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Execution]) -> None:
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

# --- Chain executions (their definitions are agents' admin) ------------------------------------
from executions.chains.admin import ChainExecutionAdmin  # noqa: E402, F401  (registers the ModelAdmin)
