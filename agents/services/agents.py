"""Creating, editing and deleting agents; the lifecycle switches that are not versions."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Organization
from agents.config import (
    LIVE_FIELDS,
    VERSIONED_FIELDS,
    WRITABLE_FIELDS,
    agent_apply_config,
    agent_draft_config,
    config_diff,
    default_config,
    merge_config,
)
from agents.models import Agent, AgentStatus, AgentTemplate, AgentVersion
from agents.selectors import agent_etag, agent_is_runnable
from agents.services.common import (
    actor_user,
    agent_lock,
    emit,
    ensure_name_free,
    record,
    require,
    save_unique,
)
from agents.services.goals import agent_goals_sync
from agents.types import type_defaults
from agents.validation import agent_config_validate, invalid_config
from billing.quotas import agent_limit_problem
from config.api.conditional import require_if_match
from config.api.errors import ApiError, InsufficientPermissions, InvalidInput

if TYPE_CHECKING:
    from accounts.access import Actor

logger = logging.getLogger(__name__)

# Transitions of DESIGN.md §4 / the api-design state diagram; publish lives in versions.py.
LIFECYCLE = {
    "publish": (AgentStatus.DRAFT, AgentStatus.PUBLISHED),
    "deprecate": (AgentStatus.PUBLISHED,),
    "archive": (AgentStatus.PUBLISHED, AgentStatus.DEPRECATED),
    "rollback": (AgentStatus.PUBLISHED, AgentStatus.DEPRECATED),
}
MAX_SLUG = 200


def lifecycle_check(agent: Agent, action: str) -> None:
    allowed = LIFECYCLE[action]
    if agent.status not in allowed:
        raise ApiError(
            code="Conflict",
            message=f"Cannot {action} an agent that is {agent.status}.",
            details={"status": agent.status, "allowed_from": [s.value for s in allowed]},
        )


def _check_keys(data: dict[str, Any]) -> None:
    unknown = sorted(set(data) - set(WRITABLE_FIELDS))
    if unknown:
        raise InvalidInput(validation_errors={key: ["Unknown field."] for key in unknown})


def _slug_for(*, organization_id: Any, name: str, wanted: str, exclude_pk: Any = None) -> str:
    """The wanted slug if free, or one made from the name with a numeric suffix."""
    live = Agent.objects.filter(organization_id=organization_id, deleted_at__isnull=True)
    if exclude_pk is not None:
        live = live.exclude(pk=exclude_pk)
    if wanted:
        if live.filter(slug=wanted).exists():
            raise invalid_config({"slug": [f"The slug {wanted!r} is taken in this organization."]})
        return wanted
    base = slugify(name)[: MAX_SLUG - 6] or "agent"
    taken = set(live.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def agent_create(
    *,
    actor: Actor | None,
    data: dict[str, Any],
    organization: Organization | None = None,
    by_user: Any = None,
    template: AgentTemplate | None = None,
    copied_from: Agent | None = None,
) -> Agent:
    """Create a draft agent in the actor's organization (``organization`` None without an
    actor makes a platform agent: the admin allows that to superusers only)."""
    if actor is not None:
        if not actor.has_perm("agents.add_agent"):
            raise InsufficientPermissions("Your role may not create agents.")
        organization = actor.organization
    if organization is not None:
        # The plan's max_agents, exact under concurrency: creations in one organization queue
        # on its row.
        Organization.objects.select_for_update(no_key=True).filter(pk=organization.pk).first()
        existing = Agent.objects.filter(organization=organization, deleted_at__isnull=True).count()
        problem = agent_limit_problem(organization=organization, agent_count=existing)
        if problem is not None:
            raise problem
    _check_keys(data)
    config = agent_config_validate(
        merge_config(default_config(), type_defaults(data)), organization_id=organization.pk if organization else None
    )
    organization_id = organization.pk if organization is not None else None
    ensure_name_free(organization_id=organization_id, name=config["name"])
    config["slug"] = _slug_for(organization_id=organization_id, name=config["name"], wanted=config["slug"])
    user = actor_user(actor, by_user)
    agent = Agent(
        organization=organization, created_by=user, updated_by=user, template=template, copied_from=copied_from
    )
    agent_apply_config(agent, config)
    try:
        save_unique(agent)
        agent_goals_sync(agent=agent)
        record(actor=actor, agent=agent, action="agent.created", by_user=by_user, summary={"name": agent.name})
        emit(
            agent,
            "ai.agent.created",
            {"id": agent.pk, "name": agent.name, "type": agent.agent_type, "domain": agent.domain},
        )
    except DatabaseError as exc:
        # Not the input (that was validated above, and a name taken meanwhile is
        # DuplicateAgentName): the agent, its goals or its log could not be written. The
        # transaction rolls back whole; the caller gets 500 AgentCreationFailed, the log the cause.
        logger.exception("agent %r could not be created in organization %s", config["name"], organization_id)
        raise agent_creation_failed(f"{type(exc).__name__} while writing the agent.") from exc
    return agent


def agent_creation_failed(reason: str, **details: Any) -> ApiError:
    return ApiError(
        code="AgentCreationFailed",
        message="The agent could not be created; nothing was saved. Try again, or tell the operators if it persists.",
        details={"reason": reason, **details},
    )


@transaction.atomic
def agent_update(
    *, actor: Actor | None, agent: Agent, data: dict[str, Any], by_user: Any = None, if_match: str | None = None
) -> Agent:
    """Edit the draft (and the live identity fields). Published versions never change.

    With ``if_match`` (the ``If-Match`` header) the edit applies only to the draft the caller
    read: checked under the row lock, so of two edits made from one read the second gets 412.
    """
    _check_keys(data)
    agent = agent_lock(agent)
    require(actor, agent, "write")
    require_if_match(if_match, agent_etag(agent), what="agent")
    if agent.status == AgentStatus.ARCHIVED:
        raise ApiError(code="VersionConflict", message="An archived agent cannot be changed.")
    versioned = sorted(set(data) & set(VERSIONED_FIELDS))
    if agent.status == AgentStatus.DEPRECATED and versioned:
        raise ApiError(
            code="VersionConflict",
            message="A deprecated agent only moves to archived; its configuration cannot change.",
            details={"fields": versioned, "editable": list(LIVE_FIELDS)},
        )
    before = agent_draft_config(agent)
    config = agent_config_validate(
        merge_config(before, data), organization_id=agent.organization_id, agent_id=agent.pk, previous=before
    )
    if config["name"].lower() != agent.name.lower():
        ensure_name_free(organization_id=agent.organization_id, name=config["name"], exclude_pk=agent.pk)
    if config["slug"] != agent.slug:
        config["slug"] = _slug_for(
            organization_id=agent.organization_id, name=config["name"], wanted=config["slug"], exclude_pk=agent.pk
        )
    changes = [c["field"] for c in config_diff(before, config)]
    changed_columns = agent_apply_config(agent, config)
    if not changed_columns:
        return agent
    agent.updated_by = actor_user(actor, by_user)
    save_unique(agent, update_fields=[*changed_columns, "updated_by", "updated_at"])
    if "goals" in changed_columns:
        agent_goals_sync(agent=agent)
    record(actor=actor, agent=agent, action="agent.updated", by_user=by_user, summary={"changes": changes})
    emit(agent, "ai.agent.updated", {"id": agent.pk, "changes": changes})
    return agent


@transaction.atomic
def agent_delete(*, actor: Actor | None, agent: Agent, by_user: Any = None) -> None:
    """Soft delete: the row and its versions stay (executions point at them), the name is freed."""
    agent = agent_lock(agent)
    require(actor, agent, "delete")
    agent.deleted_at = timezone.now()
    agent.is_active = False
    agent.updated_by = actor_user(actor, by_user)
    agent.save(update_fields=["deleted_at", "is_active", "updated_by", "updated_at"])
    record(actor=actor, agent=agent, action="agent.deleted", by_user=by_user, summary={"name": agent.name})
    emit(agent, "ai.agent.deleted", {"id": agent.pk, "name": agent.name})


def _set_status(agent: Agent, status: str, *, actor: Actor | None, by_user: Any) -> None:
    agent.status = status
    agent.updated_by = actor_user(actor, by_user)
    agent.save(update_fields=["status", "is_active", "updated_by", "updated_at"])


@transaction.atomic
def agent_deprecate(*, actor: Actor | None, agent: Agent, by_user: Any = None) -> Agent:
    """Published → deprecated: it still runs (with a warning in each run's log)."""
    agent = agent_lock(agent)
    require(actor, agent, "write")
    lifecycle_check(agent, "deprecate")
    AgentVersion.objects.filter(agent_id=agent.pk, is_current=True, deprecated_at__isnull=True).update(
        deprecated_at=timezone.now()
    )
    _set_status(agent, AgentStatus.DEPRECATED, actor=actor, by_user=by_user)
    record(actor=actor, agent=agent, action="agent.deprecated", by_user=by_user)
    emit(agent, "ai.agent.updated", {"id": agent.pk, "changes": ["status"], "status": agent.status})
    return agent


@transaction.atomic
def agent_archive(*, actor: Actor | None, agent: Agent, by_user: Any = None) -> Agent:
    """Published or deprecated → archived: never runs again, triggers off, read-only."""
    agent = agent_lock(agent)
    require(actor, agent, "write")
    lifecycle_check(agent, "archive")
    was_active = agent.is_active
    agent.is_active = False
    _set_status(agent, AgentStatus.ARCHIVED, actor=actor, by_user=by_user)
    record(actor=actor, agent=agent, action="agent.archived", by_user=by_user)
    emit(agent, "ai.agent.updated", {"id": agent.pk, "changes": ["status"], "status": agent.status})
    if was_active:
        emit(agent, "ai.agent.deactivated", {"id": agent.pk, "name": agent.name})
    return agent


@transaction.atomic
def agent_activate(*, actor: Actor | None, agent: Agent, by_user: Any = None) -> Agent:
    """Let triggers (cron, events, webhooks) start the agent. Only a runnable agent can be."""
    agent = agent_lock(agent)
    require(actor, agent, "write")
    if not agent_is_runnable(agent):
        raise ApiError(
            code="Conflict",
            message=f"An agent that is {agent.status} cannot be activated; publish a version first.",
            details={"status": agent.status},
        )
    if agent.is_active:
        return agent
    agent.is_active = True
    agent.updated_by = actor_user(actor, by_user)
    agent.save(update_fields=["is_active", "updated_by", "updated_at"])
    record(actor=actor, agent=agent, action="agent.activated", by_user=by_user)
    emit(agent, "ai.agent.activated", {"id": agent.pk, "name": agent.name})
    return agent


@transaction.atomic
def agent_deactivate(*, actor: Actor | None, agent: Agent, by_user: Any = None) -> Agent:
    """Triggers off; manual runs of a runnable agent stay possible."""
    agent = agent_lock(agent)
    require(actor, agent, "write")
    if not agent.is_active:
        return agent
    agent.is_active = False
    agent.updated_by = actor_user(actor, by_user)
    agent.save(update_fields=["is_active", "updated_by", "updated_at"])
    record(actor=actor, agent=agent, action="agent.deactivated", by_user=by_user)
    emit(agent, "ai.agent.deactivated", {"id": agent.pk, "name": agent.name})
    return agent
