"""Publishing the draft as an immutable version, and rolling back to an earlier one."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.config import agent_draft_config, agent_version_config, snapshot, versioned_part
from agents.models import Agent, AgentStatus, AgentVersion
from agents.prompting import render_system_prompt
from agents.selectors import agent_version_get
from agents.services.agents import lifecycle_check
from agents.services.common import actor_user, agent_lock, emit, record, require
from agents.validation import agent_config_validate, invalid_config
from config.api.errors import ApiError, InvalidInput

if TYPE_CHECKING:
    from accounts.access import Actor

SEMVER = re.compile(r"^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$")
BUMPS = ("major", "minor", "patch")


def parse_version(value: str) -> tuple[int, int, int]:
    match = SEMVER.match(value or "")
    if match is None:
        raise InvalidInput(validation_errors={"version": [f"{value!r} is not a semantic version such as 1.2.0."]})
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def bumped(latest: tuple[int, int, int] | None, bump: str) -> tuple[int, int, int]:
    if latest is None:
        return (1, 0, 0)
    major, minor, patch = latest
    if bump == "major":
        return (major + 1, 0, 0)
    if bump == "patch":
        return (major, minor, patch + 1)
    return (major, minor + 1, 0)


def _latest(agent: Agent) -> tuple[int, int, int] | None:
    row = (
        AgentVersion.objects.filter(agent=agent)
        .order_by("-major", "-minor", "-patch")
        .values_list("major", "minor", "patch")
        .first()
    )
    return tuple(row) if row else None  # type: ignore[return-value]


def _make_current(agent: Agent, version: AgentVersion) -> None:
    # The partial unique index allows one current version per agent: clear before setting.
    AgentVersion.objects.filter(agent=agent, is_current=True).exclude(pk=version.pk).update(is_current=False)
    AgentVersion.objects.filter(pk=version.pk).update(is_current=True)
    version.is_current = True


@transaction.atomic
def agent_publish(
    *,
    actor: Actor | None,
    agent: Agent,
    version: str | None = None,
    changelog: str = "",
    bump: str = "minor",
    by_user: Any = None,
) -> AgentVersion:
    """Snapshot the draft into a new current version (given, or the latest bumped).

    The agent row is locked, so two concurrent publishes get consecutive numbers; the
    unique (agent, version) constraint is the last line of defence.
    """
    if bump not in BUMPS:
        raise InvalidInput(validation_errors={"bump": [f"Must be one of {list(BUMPS)}."]})
    wanted = parse_version(version) if version else None
    agent = agent_lock(agent)
    require(actor, agent, "write")
    lifecycle_check(agent, "publish")
    # Validate again: the draft was valid when saved, but the catalog may have moved on.
    config = agent_config_validate(agent_draft_config(agent), organization_id=agent.organization_id, agent_id=agent.pk)
    if not render_system_prompt(config).strip():
        raise invalid_config(
            {"system_prompt": ["Give the agent a system prompt, a personality or instructions before publishing."]}
        )
    current = agent.current_version
    if current is not None and versioned_part(agent_version_config(current)) == versioned_part(config):
        raise ApiError(
            code="VersionConflict",
            message=f"Nothing changed since version {current.version}; edit the draft first.",
            details={"current_version": current.version},
        )
    latest = _latest(agent)
    if wanted is not None:
        number = wanted
        if latest is not None and number <= latest:
            raise ApiError(
                code="VersionConflict",
                message=f"Version {version} is not newer than the latest, {'.'.join(map(str, latest))}.",
                details={"version": version, "latest": ".".join(map(str, latest))},
            )
    else:
        number = bumped(latest, bump)
    label = ".".join(map(str, number))
    try:
        with transaction.atomic():
            new = AgentVersion.objects.create(
                agent=agent,
                version=label,
                major=number[0],
                minor=number[1],
                patch=number[2],
                config=snapshot(config),
                changelog=changelog or "",
                created_by=actor_user(actor, by_user),
                published_at=timezone.now(),
            )
    except IntegrityError as exc:
        raise ApiError(code="VersionConflict", message=f"Version {label} already exists.") from exc
    _make_current(agent, new)
    agent.current_version = new
    agent.status = AgentStatus.PUBLISHED
    agent.updated_by = actor_user(actor, by_user)
    agent.save(update_fields=["current_version", "status", "updated_by", "updated_at"])
    record(
        actor=actor,
        agent=agent,
        action="agent.published",
        by_user=by_user,
        target=new,
        summary={"version": label, "changelog": changelog},
    )
    emit(agent, "ai.agent.updated", {"id": agent.pk, "changes": ["current_version", "status"], "version": label})
    return new


@transaction.atomic
def agent_rollback(*, actor: Actor | None, agent: Agent, version: str, by_user: Any = None) -> AgentVersion:
    """Make an earlier (or later) published version current again. The draft is untouched."""
    agent = agent_lock(agent)
    require(actor, agent, "write")
    lifecycle_check(agent, "rollback")
    target = agent_version_get(agent=agent, version=version)
    if target.is_current:
        return target
    previous = agent.current_version.version if agent.current_version else None
    _make_current(agent, target)
    agent.current_version = target
    agent.updated_by = actor_user(actor, by_user)
    agent.save(update_fields=["current_version", "updated_by", "updated_at"])
    record(
        actor=actor,
        agent=agent,
        action="agent.rolled_back",
        by_user=by_user,
        target=target,
        summary={"from": previous, "to": target.version},
    )
    emit(agent, "ai.agent.updated", {"id": agent.pk, "changes": ["current_version"], "version": target.version})
    return target
