"""Per-user grants on one agent (django-guardian rows of AgentUserObjectPermission)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.db.models import Q

from accounts.models import Membership
from agents.access import GRANT_CODENAMES
from agents.models import Agent, AgentUserObjectPermission
from agents.services.common import actor_user, agent_lock, record, require
from config.api.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from accounts.access import Actor


def _permission(grant: str) -> Permission:
    if grant not in GRANT_CODENAMES:
        raise InvalidInput(validation_errors={"permission": [f"Must be one of {list(GRANT_CODENAMES)}."]})
    return Permission.objects.get(content_type__app_label="agents", codename=GRANT_CODENAMES[grant])


def grantee_resolve(*, agent: Agent, user: Any) -> Any:
    """A member of the agent's organization by id, username or email. Anyone else — including
    people of other organizations — is answered the same way, so nothing leaks."""
    User = get_user_model()
    lookup = Q(username__iexact=str(user)) | Q(email__iexact=str(user))
    if str(user).isascii() and str(user).isdigit():  # isdigit() alone takes "²", which int() refuses
        lookup |= Q(pk=int(str(user)))
    if agent.organization_id is None:
        raise InvalidInput("Platform agents are shared through configurations, not grants.")
    members = Membership.objects.filter(organization_id=agent.organization_id).values("user_id")
    found = User.objects.filter(lookup, pk__in=members).first()
    if found is None:
        raise InvalidInput(validation_errors={"user": ["No member of this organization matches."]})
    return found


@transaction.atomic
def agent_grant(
    *, actor: Actor | None, agent: Agent, user: Any, permission: str, by_user: Any = None
) -> AgentUserObjectPermission:
    """Give ``user`` (a member of the agent's organization) read, write, execute or admin."""
    agent = agent_lock(agent)
    require(actor, agent, "admin")
    perm = _permission(permission)
    grantee = grantee_resolve(agent=agent, user=user)
    row, created = AgentUserObjectPermission.objects.get_or_create(
        content_object=agent, user=grantee, permission=perm, defaults={"granted_by": actor_user(actor, by_user)}
    )
    if created:
        record(
            actor=actor,
            agent=agent,
            action="agent.granted",
            by_user=by_user,
            summary={"user_id": grantee.pk, "permission": permission},
        )
    return row


@transaction.atomic
def agent_revoke(
    *, actor: Actor | None, agent: Agent, user: Any, permission: str | None = None, by_user: Any = None
) -> int:
    """Remove one grant (or all of ``user``'s grants when ``permission`` is None)."""
    agent = agent_lock(agent)
    require(actor, agent, "admin")
    grantee = grantee_resolve(agent=agent, user=user)
    rows = AgentUserObjectPermission.objects.filter(content_object=agent, user=grantee)
    if permission is not None:
        rows = rows.filter(permission=_permission(permission))
    deleted, _ = rows.delete()
    if not deleted:
        raise NotFound("The user holds no such grant on this agent.")
    record(
        actor=actor,
        agent=agent,
        action="agent.revoked",
        by_user=by_user,
        summary={"user_id": grantee.pk, "permission": permission or "all"},
    )
    return deleted
