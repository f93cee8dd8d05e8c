"""Who may do what with one agent: role permissions, visibility and per-user grants.

The rules (DESIGN.md §3), applied the same way to single agents (``agent_rights``) and to
querysets (``visible_agents_q``):

- Nobody outside the agent's organization sees it (404, never 403).
- A role with ``agents.view_agent`` sees ``organization`` and ``public`` agents, its own
  agents of any visibility and — if the role builds agents (``agents.change_agent``) —
  ``team`` agents. There is no team model: the team is the organization's agent builders.
  ``agents.manage_all_agents`` sees everything.
- Members (``change_agent``/``delete_agent``) edit and delete their own agents; holders of
  ``manage_all_agents`` (admins, owners) manage all of them.
- A grant on one agent (django-guardian) gives its holder that right whatever the role:
  read, write, execute, or admin (all of them plus managing the grants).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Q

from agents.models import Agent, AgentUserObjectPermission, Visibility

if TYPE_CHECKING:
    from accounts.access import Actor

GRANT_CODENAMES = {"read": "view_agent", "write": "change_agent", "execute": "execute_agent", "admin": "admin_agent"}
CODENAME_GRANTS = {codename: grant for grant, codename in GRANT_CODENAMES.items()}
RIGHTS = ("read", "write", "execute", "delete", "admin")


def user_grants(*, user_id, agent: Agent) -> frozenset[str]:
    """The grant words ``user_id`` holds on ``agent``."""
    if user_id is None:
        return frozenset()
    codenames = AgentUserObjectPermission.objects.filter(content_object=agent, user_id=user_id).values_list(
        "permission__codename", flat=True
    )
    return frozenset(CODENAME_GRANTS[c] for c in codenames if c in CODENAME_GRANTS)


def agent_rights(actor: Actor, agent: Agent, grants: frozenset[str] | None = None) -> frozenset[str]:
    """The subset of RIGHTS ``actor`` has on ``agent`` (empty = the agent does not exist for them)."""
    if agent.organization_id != actor.organization.pk or agent.deleted_at is not None:
        return frozenset()
    if grants is None:
        grants = user_grants(user_id=actor.user_id, agent=agent)
    manage_all = actor.has_perm("agents.manage_all_agents")
    builder = actor.has_perm("agents.change_agent")
    own = agent.created_by_id is not None and agent.created_by_id == actor.user_id
    sees_by_role = actor.has_perm("agents.view_agent") and (
        manage_all
        or own
        or agent.visibility in (Visibility.ORGANIZATION, Visibility.PUBLIC)
        or (agent.visibility == Visibility.TEAM and builder)
    )
    if not (sees_by_role or grants):
        return frozenset()
    rights = {"read"}
    if "admin" in grants:
        rights |= {"write", "execute", "delete", "admin"}
    if "write" in grants or (builder and (own or manage_all)):
        rights.add("write")
    if "execute" in grants or actor.has_perm("agents.execute_agent"):
        rights.add("execute")
    if actor.has_perm("agents.delete_agent") and (own or manage_all):
        rights.add("delete")
    if manage_all or (own and builder):
        rights.add("admin")
    return frozenset(rights)


def visible_agents_q(actor: Actor) -> Q:
    """The agents of ``actor``'s organization ``actor`` may see (the queryset form of
    ``agent_rights(...)`` being non-empty)."""
    base = Q(organization_id=actor.organization.pk, deleted_at__isnull=True)
    granted = Q(id__in=AgentUserObjectPermission.objects.filter(user_id=actor.user_id).values("content_object_id"))
    if not actor.has_perm("agents.view_agent"):
        return base & granted
    if actor.has_perm("agents.manage_all_agents"):
        return base
    by_role = Q(visibility__in=[Visibility.ORGANIZATION, Visibility.PUBLIC])
    if actor.user_id is not None:
        by_role |= Q(created_by_id=actor.user_id)
    if actor.has_perm("agents.change_agent"):
        by_role |= Q(visibility=Visibility.TEAM)
    return base & (by_role | granted)


def agent_visible_to(actor: Actor, agent_id: Any) -> bool:
    """Whether ``agent_id`` is an agent of ``actor``'s organization that ``actor`` may see
    (registered for accounts' ``POST activity/``, accounts/agent_lookup.py)."""
    return Agent.objects.filter(visible_agents_q(actor), pk=agent_id).exists()
