"""Who is acting, for which organization, with which scopes and permissions.

Every API view and every service that writes takes an ``Actor``: the user, the token (if
the request came with one), the organization the request is scoped to, and the membership
that gives the user a role there. Organizations never cross: an actor has exactly one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rest_framework.exceptions import MethodNotAllowed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.authentication import token_membership
from accounts.models import ApiToken, Membership, Organization
from config.api.errors import ApiError
from config.logging import log_context_var

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


@dataclass(frozen=True)
class Actor:
    organization: Organization
    user: AbstractBaseUser | None
    membership: Membership | None = None
    token: ApiToken | None = None

    @property
    def role(self) -> str | None:
        return self.membership.role if self.membership else None

    def has_perm(self, perm: str) -> bool:
        return self.membership is not None and self.membership.has_perm(perm)

    def has_scope(self, scope: str) -> bool:
        # A session is the person themself: every scope their role allows.
        return self.token is None or self.token.has_scope(scope)

    @property
    def user_id(self):
        return getattr(self.user, "pk", None)


ORGANIZATION_HEADER = "X-Organization"


def resolve_actor(request: Request) -> Actor | None:
    """The actor of an authenticated request, or None when it belongs to no organization."""
    cached = getattr(request, "_agentry_actor", None)
    if cached is not None:
        return cached
    user = request.user
    if not user or not user.is_authenticated:
        return None
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is not None:
        membership = _token_membership(token)
    else:
        memberships = Membership.objects.select_related("organization").filter(user=user, organization__is_active=True)
        wanted = request.headers.get(ORGANIZATION_HEADER)
        if wanted:
            field = "organization__id" if _looks_like_uuid(wanted) else "organization__slug"
            memberships = memberships.filter(**{field: wanted})
        membership = memberships.order_by("created_at").first()
    if membership is None:
        return None
    actor = Actor(organization=membership.organization, user=user, membership=membership, token=token)
    request._agentry_actor = actor  # type: ignore[attr-defined]
    # From here on (and in Django's 4xx/5xx line after the view) log lines name the tenant.
    log_context_var.set({**log_context_var.get(), "organization_id": str(membership.organization_id)})
    return actor


def _token_membership(token: ApiToken) -> Membership | None:
    # Authentication (token_for_raw) already found it, from the auth cache or the database.
    if hasattr(token, "_agentry_membership"):
        return token._agentry_membership
    return token_membership(token)


def token_actor(token: ApiToken) -> Actor | None:
    """The actor a bearer token acts as outside DRF (the MCP door), or None when its user is
    no longer a member of its organization — the same answer ``resolve_actor`` gives."""
    membership = _token_membership(token)
    if membership is None:
        return None
    return Actor(organization=membership.organization, user=token.user, membership=membership, token=token)


def _looks_like_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class IsOrganizationMember(BasePermission):
    """Authenticated and acting inside an organization the user belongs to."""

    def has_permission(self, request: Request, view) -> bool:
        return resolve_actor(request) is not None


class AccessRules(IsOrganizationMember):
    """Checks a view's ``access_rules``: {action: (scope, permission)}; "*" is the fallback.

    An action with no rule is refused, so a new endpoint is closed until someone decides who
    may use it. A missing scope answers AgentAccessDenied, a missing role permission
    InsufficientPermissions; both 403.
    """

    def has_permission(self, request: Request, view) -> bool:
        method = (request.method or "").lower()
        action_map = getattr(view, "action_map", None)
        offered = method in action_map if action_map is not None else hasattr(view, method)
        if not offered and method != "options":
            # A method the view does not offer is a 405, not "no rule allows it" (403).
            raise MethodNotAllowed(method.upper())
        actor = resolve_actor(request)
        if actor is None:
            return False
        rules: dict = getattr(view, "access_rules", {})
        action = getattr(view, "action", None) or (request.method or "").lower()
        rule = rules.get(action, rules.get("*"))
        if rule is None:
            raise ApiError(code="InsufficientPermissions", message=f"No access rule allows {action!r}.")
        scope, perm = rule
        if scope and not actor.has_scope(scope):
            raise ApiError(
                code="AgentAccessDenied",
                message=f"The token lacks the {scope!r} scope.",
                details={"required_scope": scope},
            )
        if perm and not actor.has_perm(perm):
            raise ApiError(
                code="InsufficientPermissions",
                message="Your role does not allow this.",
                details={"required_permission": perm, "role": actor.role},
            )
        return True


def request_actor(request: Request) -> Actor:
    actor = resolve_actor(request)
    if actor is None:  # the permission classes ran first; this is a programming error
        raise RuntimeError("request_actor() called on a request without an organization")
    return actor
