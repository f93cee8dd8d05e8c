"""Helpers every agent service uses: locking, the rights check, the activity log and events."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from accounts.services import activity_record
from agents.access import agent_rights
from agents.models import Agent
from agents.selectors import agent_not_found
from agents.signals import agent_event
from config.api.errors import ApiError, InsufficientPermissions

if TYPE_CHECKING:
    from accounts.access import Actor

logger = logging.getLogger(__name__)

RIGHT_MESSAGES = {
    "write": "You may not change this agent.",
    "delete": "You may not delete this agent.",
    "admin": "You may not manage who can use this agent.",
    "execute": "You may not execute this agent.",
}


def actor_user(actor: Actor | None, by_user: Any = None) -> Any:
    """The person to credit: the actor's user, or whoever acted without an actor (the admin)."""
    return actor.user if actor is not None else by_user


def agent_lock(agent: Agent) -> Agent:
    """The agent row again, locked for the rest of the transaction (two edits, publishes or
    rollbacks of one agent serialize here)."""
    locked = Agent.objects.select_for_update(no_key=True).filter(pk=agent.pk, deleted_at__isnull=True).first()
    if locked is None:
        raise agent_not_found(agent.pk)
    return locked


def require(actor: Actor | None, agent: Agent, right: str) -> None:
    """Raise unless ``actor`` holds ``right`` on ``agent`` (no actor = the system or an operator
    in the admin, who the admin's own scoping has already checked)."""
    if actor is None:
        return
    rights = agent_rights(actor, agent)
    if not rights:
        raise agent_not_found(agent.pk)
    if right not in rights:
        raise InsufficientPermissions(RIGHT_MESSAGES.get(right), details={"required": right})


def duplicate_name(name: str) -> ApiError:
    return ApiError(code="DuplicateAgentName", details={"name": name})


def ensure_name_free(*, organization_id: Any, name: str, exclude_pk: Any = None) -> None:
    qs = Agent.objects.filter(deleted_at__isnull=True, organization_id=organization_id)
    qs = qs.annotate(lower_name=Lower("name")).filter(lower_name=name.lower())
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    if qs.exists():
        raise duplicate_name(name)


def save_unique(agent: Agent, *, update_fields: list[str] | None = None) -> None:
    """Save; a unique-name race lost to a concurrent request becomes DuplicateAgentName."""
    try:
        with transaction.atomic():
            agent.save(update_fields=update_fields)
    except IntegrityError as exc:
        if "agent_unique_name" in str(exc) or "agent_unique_platform_name" in str(exc):
            raise duplicate_name(agent.name) from exc
        if "agent_unique_slug" in str(exc):
            raise ApiError(
                code="InvalidAgentConfig", details={"validation_errors": {"slug": ["This slug is taken."]}}
            ) from exc
        raise


def record(
    *,
    actor: Actor | None,
    agent: Agent,
    action: str,
    summary: dict | None = None,
    target: Any = None,
    by_user: Any = None,
    organization: Any = None,
) -> None:
    """One activity-log row for the agent's organization (platform agents have none)."""
    organization = organization or agent.organization
    if organization is None:
        return
    activity_record(
        organization=organization,
        action=action,
        actor=actor,
        user=by_user,
        target=target if target is not None else agent,
        agent_id=agent.pk,
        request_summary=summary or {},
    )


def emit(agent: Agent, event_type: str, payload: dict[str, Any]) -> None:
    """A platform event, in the current transaction (``agents.signals.agent_event``);
    platform agents belong to no organization's log."""
    if agent.organization_id is None:
        return
    received = agent_event.send(
        sender=Agent, organization_id=agent.organization_id, event_type=event_type, payload=payload, agent_id=agent.pk
    )
    if not received:
        # Only when the executions app is not installed: say so rather than lose it quietly.
        logger.error("no receiver for agent events: %s of agent %s is not recorded", event_type, agent.pk)
