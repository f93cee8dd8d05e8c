"""Admin for many organizations: superusers see everything, everybody else their own.

A staff user who is an owner or admin of organizations sees and manages only those
organizations' rows, whatever Django model permissions say; a superuser sees all of them.
Every tenant-owned ModelAdmin of every app inherits from ``OrganizationScopedAdmin``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from billing.models import Membership
from billing.roles import Role
from config.forms import BoundedJSONField

ADMIN_ROLES = (Role.OWNER, Role.ADMIN)


def managed_organization_ids(request: HttpRequest) -> list[Any]:
    cached = getattr(request, "_agentry_admin_orgs", None)
    if cached is None:
        cached = list(
            Membership.objects.filter(user_id=request.user.pk, role__in=ADMIN_ROLES).values_list(  # type: ignore[misc]
                "organization_id", flat=True
            )
        )
        request._agentry_admin_orgs = cached  # type: ignore[attr-defined]
    return cached


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Rows reach the organization through ``organization_path`` (a lookup path)."""

    organization_path = "organization"
    # JSON typed by a tenant's admins: the API parser's bounds (depth, no NUL), not a 500.
    formfield_overrides = {models.JSONField: {"form_class": BoundedJSONField}}

    def _is_platform(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def _is_org_admin(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff and managed_organization_ids(request))

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if self._is_platform(request):
            return qs
        return qs.filter(**{f"{self.organization_path}__in": managed_organization_ids(request)})

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_platform(request) or self._is_org_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        # An organization admin can only point rows at its own organizations.
        if db_field.name == "organization" and not self._is_platform(request):
            from billing.models import Organization

            kwargs["queryset"] = Organization.objects.filter(id__in=managed_organization_ids(request))
        if db_field.name in ("user", "created_by", "resolved_by") and not self._is_platform(request):
            # Never list the platform's users to a tenant: only people already in its organizations.
            kwargs["queryset"] = db_field.related_model.objects.filter(
                memberships__organization_id__in=managed_organization_ids(request)
            ).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyAdminMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
