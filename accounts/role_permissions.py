"""The mapping of roles to permissions, per organization (data an owner can change)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from accounts.models import Organization
from accounts.roles import ALL_PERMISSIONS, DEFAULT_ROLE_PERMISSIONS, Role, permissions_for
from accounts.services import activity_record
from config.api.errors import InsufficientPermissions, InvalidInput

if TYPE_CHECKING:
    from accounts.access import Actor

EDITABLE_ROLES = (Role.ADMIN.value, Role.MEMBER.value, Role.VIEWER.value)


def organization_roles(*, organization: Organization) -> dict[str, Any]:
    overrides = organization.role_permissions or {}
    return {
        "roles": {role.value: sorted(permissions_for(role.value, overrides)) for role in Role},
        "customized": sorted(role for role in overrides if role in EDITABLE_ROLES),
        "defaults": {role: sorted(perms) for role, perms in DEFAULT_ROLE_PERMISSIONS.items()},
        "permissions": list(ALL_PERMISSIONS),
    }


@transaction.atomic
def role_permissions_set(*, actor: Actor, mapping: dict[str, Any]) -> dict[str, Any]:
    """Replace the organization's overrides. A role left out goes back to its defaults;
    the owner role is fixed (an owner can never lock themself out)."""
    if actor.role != Role.OWNER:
        raise InsufficientPermissions("Only an owner can change what roles may do.")
    errors: dict[str, list[str]] = {}
    clean: dict[str, list[str]] = {}
    if not isinstance(mapping, dict):
        raise InvalidInput(validation_errors={"roles": ["Must be an object of role -> permissions."]})
    for role, perms in mapping.items():
        if role not in EDITABLE_ROLES:
            errors.setdefault(role, []).append(f"Not an editable role; use {list(EDITABLE_ROLES)}.")
            continue
        if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
            errors.setdefault(role, []).append("Must be a list of permission names.")
            continue
        unknown = sorted(set(perms) - set(ALL_PERMISSIONS))
        if unknown:
            errors.setdefault(role, []).append(f"Unknown permissions {unknown}.")
            continue
        clean[role] = sorted(set(perms))
    if errors:
        raise InvalidInput(validation_errors=errors)
    organization = Organization.objects.select_for_update(no_key=True).get(pk=actor.organization.pk)
    organization.role_permissions = clean
    organization.save(update_fields=["role_permissions", "updated_at"])
    activity_record(organization=organization, action="roles.updated", actor=actor, request_summary=clean)
    return organization_roles(organization=organization)
