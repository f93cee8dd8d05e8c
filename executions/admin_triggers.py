"""Admin for schedules, refused trigger attempts, webhook endpoints and their deliveries."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.access import Actor
from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin, managed_organization_ids
from agents.models import Agent
from agents.services.common import require
from agents.triggers.cron import cron_normalise, cron_problem, timezone_problem
from agents.triggers.patterns import pattern_problem
from config.api.errors import ApiError
from executions.models import ScheduledExecution, ScheduleSource, TriggerAttempt, WebhookDelivery, WebhookEndpoint
from executions.triggers.schedules import schedule_create, schedule_delete, schedule_update
from executions.webhooks.delivery import url_problem, webhook_delivery_retry_now
from executions.webhooks.services import webhook_endpoint_create, webhook_endpoint_delete, webhook_endpoint_update

WEBHOOKS = "billing.manage_webhooks"


def _api_errors(form: forms.ModelForm, error: ApiError) -> None:
    for field, problems in (error.details.get("validation_errors") or {"__all__": [error.message]}).items():
        name = field.split(".")[0]
        form.add_error(name if name in form.fields else None, "; ".join(map(str, problems)))


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = ScheduledExecution
        fields = ["organization", "agent", "cron_expression", "timezone", "input", "is_active"]
        help_texts = {"input": '{"task": "…", "context": {…}}', "cron_expression": "Five fields: 0 9 * * 1-5"}

    def clean_cron_expression(self) -> str:
        value = self.cleaned_data["cron_expression"]
        if problem := cron_problem(value):
            raise forms.ValidationError(problem)
        return cron_normalise(value)

    def clean_timezone(self) -> str:
        value = self.cleaned_data["timezone"]
        if problem := timezone_problem(value):
            raise forms.ValidationError(problem)
        return value


@admin.register(ScheduledExecution)
class ScheduledExecutionAdmin(OrganizationScopedAdmin):
    """``source: agent`` rows mirror agents' trigger_schedule: read-only here."""

    form = ScheduleForm
    api_permissions = {
        "view": "agents.view_agent",
        "add": "agents.execute_agent",
        "change": "agents.execute_agent",
        "delete": "agents.execute_agent",
    }
    platform_uses_services = True
    list_display = [
        "agent", "source", "cron_expression", "timezone", "is_active", "enabled", "next_execution_at",
        "last_execution_at", "fire_count",
    ]  # fmt: skip
    list_filter = ["source", "is_active"]
    list_select_related = ["agent", "periodic_task"]
    search_fields = ["agent__name", "cron_expression"]
    actions = ["pause_selected", "resume_selected"]
    readonly_fields = ["next_execution_at", "last_execution_at", "last_execution_id", "fire_count", "last_fired_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.source == ScheduleSource.AGENT:
            return [*ScheduleForm.Meta.fields, *self.readonly_fields]
        if obj is not None:
            return ["organization", "agent", *self.readonly_fields]
        return self.readonly_fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "agent":
            agents = Agent.objects.filter(deleted_at__isnull=True)
            if not self._is_platform(request):
                agents = agents.filter(organization_id__in=managed_organization_ids(request))
            kwargs["queryset"] = agents
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(boolean=True, description="beat fires it")
    def enabled(self, schedule: ScheduledExecution) -> bool:
        return bool(schedule.periodic_task and schedule.periodic_task.enabled)

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> ScheduledExecution:
        data = {
            key: form.cleaned_data[key]
            for key in ("cron_expression", "timezone", "input", "is_active")
            if key in form.cleaned_data
        }
        if change:
            schedule = ScheduledExecution.objects.get(pk=form.instance.pk)
            return schedule_update(actor=actor, schedule=schedule, data=data, by_user=request.user)
        agent = form.cleaned_data["agent"]
        require(actor, agent, "execute")  # as the API: only an agent the person may run
        return schedule_create(
            actor=actor, agent=agent, data=data, organization=form.cleaned_data["organization"], by_user=request.user
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.source == ScheduleSource.AGENT:
            return False  # cleared on the agent instead
        return super().has_delete_permission(request, obj)

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: ScheduledExecution) -> None:
        schedule_delete(actor=actor, schedule=obj, by_user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ScheduledExecution]) -> None:
        super().delete_queryset(request, queryset.filter(source=ScheduleSource.API))

    def _switch(self, request: HttpRequest, queryset: QuerySet[ScheduledExecution], active: bool) -> None:
        done = 0
        for schedule in queryset.filter(source=ScheduleSource.API):
            try:
                actor = self.actor_for(request, schedule.organization_id, "change")
                schedule_update(actor=actor, schedule=schedule, data={"is_active": active}, by_user=request.user)
            except (ApiError, PermissionDenied) as refused:
                message = getattr(refused, "message", refused)
                self.message_user(request, f"{schedule}: not changed: {message}", messages.ERROR)
                continue
            done += 1
        self.message_user(request, f"{'Resumed' if active else 'Paused'} {done} schedule(s).", messages.SUCCESS)

    @admin.action(description="Pause the selected schedules")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[ScheduledExecution]) -> None:
        self._switch(request, queryset, False)

    @admin.action(description="Resume the selected schedules")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[ScheduledExecution]) -> None:
        self._switch(request, queryset, True)


@admin.register(TriggerAttempt)
class TriggerAttemptAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": "agents.view_agent"}
    list_display = ["created_at", "agent", "trigger_type", "code", "message"]
    list_filter = ["trigger_type", "code"]
    list_select_related = ["agent"]
    date_hierarchy = "created_at"


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["organization", "url", "description", "events", "is_active"]
        help_texts = {"events": "Patterns such as ai.execution.*, comma-separated; empty: every platform event."}

    def clean_url(self) -> str:
        value = self.cleaned_data["url"]
        if problem := url_problem(value):
            raise forms.ValidationError(problem)
        return value

    def clean_events(self) -> list[str]:
        events = self.cleaned_data["events"] or []
        problems = [p for p in (pattern_problem(e, allow_platform=True) for e in events) if p]
        if problems:
            raise forms.ValidationError(problems)
        return events


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OrganizationScopedAdmin):
    """The secret is shown once, in the message after adding; only its last four after."""

    form = WebhookEndpointForm
    api_permissions = {"view": WEBHOOKS, "add": WEBHOOKS, "change": WEBHOOKS, "delete": WEBHOOKS}
    platform_uses_services = True
    list_display = [
        "url",
        "organization",
        "events",
        "is_active",
        "last_success_at",
        "last_failure_at",
        "consecutive_failures",
    ]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    readonly_fields = ["secret_last4", "last_success_at", "last_failure_at", "consecutive_failures"]

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> WebhookEndpoint:
        data = {key: form.cleaned_data[key] for key in ("url", "description", "events", "is_active")}
        if change:
            endpoint = WebhookEndpoint.objects.get(pk=form.instance.pk)
            return webhook_endpoint_update(actor=actor, endpoint=endpoint, data=data, by_user=request.user)
        saved, secret = webhook_endpoint_create(
            actor=actor, data=data, organization=form.cleaned_data["organization"], by_user=request.user
        )
        self.message_user(request, f"Signing secret (shown once): {secret}", messages.WARNING)
        return saved

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: WebhookEndpoint) -> None:
        webhook_endpoint_delete(actor=actor, endpoint=obj, by_user=request.user)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": WEBHOOKS, "retry": WEBHOOKS}
    list_display = [
        "created_at", "endpoint", "event_type", "status", "attempts", "response_status", "next_attempt_at",
        "delivered_at",
    ]  # fmt: skip
    list_filter = ["status", "event_type"]
    list_select_related = ["endpoint"]
    date_hierarchy = "created_at"
    actions = ["retry_selected"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Send the selected deliveries again now")
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        done = 0
        for delivery in queryset:
            try:
                self.actor_for(request, delivery.organization_id, "retry")
            except PermissionDenied as refused:
                self.message_user(request, f"{delivery.pk}: not sent again: {refused}", messages.ERROR)
                continue
            done += webhook_delivery_retry_now(delivery=delivery)
        self.message_user(request, f"Queued {done} delivery(ies) again.", messages.SUCCESS)
