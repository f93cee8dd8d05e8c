"""Chains and their executions in the admin: definitions validated as in the API, runs
read-only with every step attempt."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.access import Actor
from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from agents.models import AgentChain, ChainExecution, ChainStepRun
from agents.services.chains import chain_create, chain_delete, chain_execution_cancel, chain_update
from agents.validation.chains import chain_definition_validate
from config.api.errors import ApiError

FIELDS = ["name", "description", "status", "steps", "error_handling", "retry_policy", "timeout_seconds"]


class ChainForm(forms.ModelForm):
    class Meta:
        model = AgentChain
        fields = ["organization", *FIELDS]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        organization = cleaned.get("organization") or getattr(self.instance, "organization", None)
        if organization is None or self.errors:
            return cleaned
        try:
            chain_definition_validate({k: cleaned.get(k) for k in FIELDS}, organization_id=organization.pk)
        except ApiError as exc:
            for path, problems in (exc.details.get("validation_errors") or {"": [exc.message]}).items():
                field = path.split(".")[0]
                self.add_error(field if field in self.fields else None, "; ".join(f"{path}: {p}" for p in problems))
        return cleaned


@admin.register(AgentChain)
class AgentChainAdmin(OrganizationScopedAdmin):
    form = ChainForm
    api_permissions = {
        "view": "agents.view_agent",
        "add": "agents.change_agent",
        "change": "agents.change_agent",
        "delete": "agents.change_agent",
    }
    platform_uses_services = True
    list_display = ["name", "organization", "status", "step_count", "timeout_seconds", "updated_at"]
    list_filter = ["status"]
    search_fields = ["name", "description"]

    @admin.display(description="steps")
    def step_count(self, chain: AgentChain) -> int:
        return len(chain.steps or [])

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["organization"] if obj is not None else []

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> AgentChain:
        data = {key: form.cleaned_data[key] for key in FIELDS if key in form.cleaned_data}
        if change:
            chain = AgentChain.objects.get(pk=form.instance.pk)
            return chain_update(actor=actor, chain=chain, data=data, by_user=request.user)
        organization = form.cleaned_data["organization"]
        return chain_create(actor=actor, data=data, organization=organization, by_user=request.user)

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: AgentChain) -> None:
        chain_delete(actor=actor, chain=obj, by_user=request.user)


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
