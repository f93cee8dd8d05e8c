from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.access import Actor
from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin, admin_actor, admin_memberships
from accounts.models import ActivityLog, ApiToken, Membership, Organization
from accounts.role_permissions import role_permissions_set
from accounts.roles import Role
from accounts.services import (
    PLATFORM_ORGANIZATION_FIELDS,
    api_token_revoke,
    api_token_update,
    membership_add,
    membership_remove,
    membership_role_change,
    organization_create,
    organization_update,
)
from config.api.errors import ApiError


class MembershipInline(admin.TabularInline):
    """Who is in the organization. Roles change on the membership's own page, through the
    rules of ``accounts.services`` (only owners touch owners; one owner always stays)."""

    model = Membership
    extra = 0
    can_delete = False
    fields = ("user", "role", "created_at")
    readonly_fields = fields
    show_change_link = True

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    """Owners and admins rename their organization and set its budget caps; owners change what
    roles may do (as ``PUT organization/roles/``); slug, plan and is_active are the platform's."""

    organization_path = "id"
    api_permissions = {"view": None, "change": None}
    platform_uses_services = True
    list_display = ["name", "slug", "plan", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    fields = ["name", "slug", "is_active", "plan", "daily_budget_usd", "monthly_budget_usd", "role_permissions"]
    inlines = [MembershipInline]

    def has_add_permission(self, request) -> bool:
        return self._is_platform(request)  # only the platform creates tenants

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._is_platform(request)

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> dict:
        return {"slug": ("name",)} if obj is None else {}

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields: list[str] = []
        if not self._is_platform(request):
            fields += PLATFORM_ORGANIZATION_FIELDS
        membership = admin_memberships(request).get(obj.pk) if obj is not None else None
        if obj is not None and (membership is None or membership.role != Role.OWNER):
            fields.append("role_permissions")  # owners only, as in the API
        return fields

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> Organization:
        data = {name: form.cleaned_data[name] for name in form.changed_data if name != "role_permissions"}
        if not change:
            organization = organization_create(name=data.pop("name", ""), slug=data.pop("slug", None))
        else:
            organization = Organization.objects.get(pk=form.instance.pk)
        if "role_permissions" in form.changed_data:
            role_permissions_set(
                actor=actor or admin_actor(request, organization.pk), mapping=form.cleaned_data["role_permissions"]
            )
        return organization_update(organization=organization, data=data, actor=actor, by_user=request.user)


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    """Roles change through the same rules for everyone: ``billing.manage_members`` to change
    memberships, only an owner makes or changes an owner, and one owner always stays."""

    api_permissions = {
        "view": None,
        "add": "billing.manage_members",
        "change": "billing.manage_members",
        "delete": "billing.manage_members",
    }
    platform_uses_services = True
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user", "organization"]
    search_fields = ["user__username", "user__email", "organization__slug"]
    fields = ["user", "organization", "role", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["created_at"] if obj is None else ["user", "organization", "created_at"]

    def _touches_an_owner_it_may_not(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None or obj.role != Role.OWNER or self._is_platform(request):
            return False
        mine = admin_memberships(request).get(obj.organization_id)
        return mine is None or mine.role != Role.OWNER

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and not self._touches_an_owner_it_may_not(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and not self._touches_an_owner_it_may_not(request, obj)

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> Membership:
        role = form.cleaned_data["role"]
        if change:
            return membership_role_change(membership=form.instance, role=role, actor=actor, by_user=request.user)
        return membership_add(
            organization=form.cleaned_data["organization"],
            user=form.cleaned_data["user"],
            role=role,
            actor=actor,
            by_user=request.user,
        )

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: Membership) -> None:
        membership_remove(membership=obj, actor=actor, by_user=request.user)


class ApiTokenForm(forms.ModelForm):
    revoke = forms.BooleanField(
        required=False,
        help_text="Revokes this token and every token it minted. A revoked token stays revoked.",
    )

    class Meta:
        model = ApiToken
        fields = ["name", "expires_at"]
        help_texts = {"expires_at": "Can only be brought forward; mint a new token for longer access."}


TOKEN_FIELDS = (
    "prefix", "name", "user", "organization", "scopes", "parent", "expires_at", "revoke", "revoked_at",
    "last_used_at", "created_at",
)  # fmt: skip


@admin.register(ApiToken)
class ApiTokenAdmin(OrganizationScopedAdmin):
    """Only the prefix is ever shown; the hash is not a field here and the value is never stored.

    People rename their own tokens, bring their expiry forward or revoke them; those who manage
    members do that for others (an owner's tokens: owners only). Revocation is one-way and takes
    the tokens it minted with it; an expiry is never pushed back.
    """

    form = ApiTokenForm
    api_permissions = {"view": None, "change": None}
    platform_uses_services = True
    list_display = ["prefix", "name", "user", "organization", "scopes", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["organization"]
    list_select_related = ["user", "organization"]
    search_fields = ["prefix", "name", "user__username"]
    fields = TOKEN_FIELDS
    readonly_fields = ["prefix", "user", "organization", "scopes", "parent", "revoked_at", "last_used_at", "created_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None and obj.is_revoked:
            return [name for name in TOKEN_FIELDS if name != "revoke"]
        return list(self.readonly_fields)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:  # type: ignore[override]
        if obj is not None and obj.is_revoked:
            return [name for name in TOKEN_FIELDS if name != "revoke"]
        return list(TOKEN_FIELDS)

    def has_add_permission(self, request) -> bool:
        return False  # tokens are created through the API or `create_api_token`, shown once

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked, never deleted: the activity log keeps pointing at them

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> ApiToken:
        token = ApiToken.objects.get(pk=form.instance.pk)
        changes = {name: form.cleaned_data[name] for name in ("name", "expires_at") if name in form.changed_data}
        if changes:
            token = api_token_update(token=token, actor=actor, by_user=request.user, **changes)
        if form.cleaned_data.get("revoke"):
            token = api_token_revoke(token=token, actor=actor, by_user=request.user)
        return token

    @admin.action(description="Revoke selected tokens (and the tokens they minted)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        done = 0
        for token in queryset:
            try:
                actor = self.actor_for(request, token.organization_id, "change")
                api_token_revoke(token=token, actor=actor, by_user=request.user)
                done += 1
            except (ApiError, PermissionDenied) as refused:
                self.message_user(request, f"{token.prefix}…: not revoked: {refused}", messages.ERROR)
        if done:
            self.message_user(request, f"Revoked {done} token(s).", messages.SUCCESS)


@admin.register(ActivityLog)
class ActivityLogAdmin(ReadOnlyAdminMixin, OrganizationScopedAdmin):
    api_permissions = {"view": "billing.view_all_activity"}
    list_display = ["created_at", "organization", "action", "user", "status", "target_type", "target_id"]
    list_filter = ["status", "action"]
    search_fields = ["action", "target_id", "request_id"]
    date_hierarchy = "created_at"
