"""Chains in the admin: definitions validated as in the API. Their runs are
``executions.chains.admin``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from accounts.access import Actor
from accounts.admin_scoping import OrganizationScopedAdmin
from agents.models import AgentChain
from agents.services.chains import chain_create, chain_delete, chain_update
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
