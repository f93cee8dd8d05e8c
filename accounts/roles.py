"""Roles and the permissions they carry, per organization.

The defaults below are data, not code paths: an owner can replace the list of any role
except ``owner`` for their organization (``Organization.role_permissions``), and every
check goes through ``role_has_perm``.
"""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


# Every permission the platform checks, "app_label.codename".
ALL_PERMISSIONS: tuple[str, ...] = (
    "agents.view_agent",
    "agents.add_agent",
    "agents.change_agent",
    "agents.delete_agent",
    "agents.execute_agent",
    "agents.manage_all_agents",  # edit/delete agents created by others
    "executions.view_execution",
    "executions.cancel_execution",
    "tools.view_tool",
    "tools.add_tool",
    "tools.change_tool",
    "tools.delete_tool",
    "tools.grant_capabilities",
    "approvals.view_approvalrequest",
    "approvals.resolve_approvalrequest",
    "approvals.change_riskrule",
    "memory.view_memory",
    "memory.change_memory",
    "billing.view_usage",
    "billing.view_activitylog",
    "billing.view_all_activity",
    "billing.manage_members",
    "billing.manage_provider_connections",
    "billing.manage_webhooks",
)

_VIEW = tuple(p for p in ALL_PERMISSIONS if ".view_" in p and p != "billing.view_all_activity")

DEFAULT_ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Role.OWNER: ALL_PERMISSIONS,
    Role.ADMIN: ALL_PERMISSIONS,
    Role.MEMBER: (
        *_VIEW,
        "agents.add_agent",
        "agents.change_agent",
        "agents.delete_agent",
        "agents.execute_agent",
        "executions.cancel_execution",
        "memory.change_memory",
    ),
    Role.VIEWER: _VIEW,
}


def permissions_for(role: str, overrides: dict | None = None) -> frozenset[str]:
    """The permissions of ``role`` given an organization's overrides (owners are fixed)."""
    if role == Role.OWNER:
        return frozenset(ALL_PERMISSIONS)
    if overrides and role in overrides:
        return frozenset(p for p in overrides[role] if p in ALL_PERMISSIONS)
    return frozenset(DEFAULT_ROLE_PERMISSIONS.get(role, ()))
