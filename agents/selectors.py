"""Reads for agents, always scoped to the actor's organization and visibility.

Another organization's agent, a soft-deleted one and one outside the caller's visibility
all answer the same AgentNotFound (DESIGN.md §3, §14).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Case, Q, QuerySet, Value, When
from django.utils import timezone

from agents.access import CODENAME_GRANTS, GRANT_CODENAMES, agent_rights, visible_agents_q
from agents.config import (
    agent_draft_config,
    agent_draft_view,
    agent_version_config,
    agent_version_view,
    apply_overrides,
    config_diff,
    snapshot,
    version_shaped,
    versioned_part,
)
from agents.goals import goal_status
from agents.models import (
    Agent,
    AgentChain,
    AgentConfiguration,
    AgentGoal,
    AgentStatus,
    AgentTemplate,
    AgentUserObjectPermission,
    AgentVersion,
    ChainExecution,
    ProviderConnection,
    RuntimeState,
    Visibility,
)
from agents.prompting import render_system_prompt
from agents.tooling import available_tool_names, capability_tag_warnings, tool_gap_warnings
from agents.types import type_config_warnings
from agents.validation import agent_config_validate, invalid_config, model_warnings, tool_pattern_warnings
from config.api.conditional import strong_etag
from config.api.errors import ApiError, NotFound
from config.api.ids import one_or_not_found, uuid_or_none

if TYPE_CHECKING:
    from accounts.access import Actor
    from accounts.models import Organization

RUNNABLE_STATUSES = (AgentStatus.PUBLISHED, AgentStatus.DEPRECATED)
ERROR_RUN_STATUSES = ("failed", "timed_out")
DRAFT = "draft"


def agent_not_found(agent_id: Any = None) -> ApiError:
    return ApiError(code="AgentNotFound", details={"agent_id": str(agent_id)} if agent_id else {})


def with_runtime_state(qs: QuerySet[Agent]) -> QuerySet[Agent]:
    """Annotate ``runtime_state``: offline (inactive or archived), busy (a run in flight),
    error (the last run failed or timed out) or idle."""
    return qs.annotate(
        runtime_state=Case(
            When(Q(is_active=False) | Q(status=AgentStatus.ARCHIVED), then=Value(RuntimeState.OFFLINE.value)),
            When(active_runs__gt=0, then=Value(RuntimeState.BUSY.value)),
            When(last_run_status__in=ERROR_RUN_STATUSES, then=Value(RuntimeState.ERROR.value)),
            default=Value(RuntimeState.IDLE.value),
        )
    )


def agent_runtime_state(agent: Agent) -> str:
    """The same rule as ``with_runtime_state`` for an agent already in memory."""
    annotated = getattr(agent, "runtime_state", None)
    if annotated:
        return annotated
    if not agent.is_active or agent.status == AgentStatus.ARCHIVED:
        return RuntimeState.OFFLINE
    if agent.active_runs > 0:
        return RuntimeState.BUSY
    if agent.last_run_status in ERROR_RUN_STATUSES:
        return RuntimeState.ERROR
    return RuntimeState.IDLE


def agent_list(*, actor: Actor) -> QuerySet[Agent]:
    """The organization's agents the actor may see, ready for serialization in one query."""
    qs = Agent.objects.filter(visible_agents_q(actor)).select_related("current_version", "created_by")
    return with_runtime_state(qs)


def agent_get(*, actor: Actor, agent_id: Any) -> Agent:
    pk = uuid_or_none(agent_id)
    agent = agent_list(actor=actor).filter(pk=pk).first() if pk else None
    if agent is None:
        raise agent_not_found(agent_id)
    return agent


def agent_list_executable(*, actor: Actor) -> list[Agent]:
    """The organization's runnable agents ``actor`` may execute (the ``agents:execute`` scope and
    the execute right, by role or grant), by slug: what the protocol doors offer."""
    if not actor.has_scope("agents:execute"):
        return []
    agents = list(
        Agent.objects.filter(visible_agents_q(actor), status__in=RUNNABLE_STATUSES, current_version__isnull=False)
        .select_related("current_version")
        .order_by("slug")
    )
    if actor.has_perm("agents.execute_agent"):
        return agents
    granted = set(
        AgentUserObjectPermission.objects.filter(
            user_id=actor.user_id,
            content_object__in=agents,
            permission__codename__in=(GRANT_CODENAMES["execute"], GRANT_CODENAMES["admin"]),
        ).values_list("content_object_id", flat=True)
    )
    return [agent for agent in agents if agent.pk in granted]


def agent_etag(agent: Agent) -> str:
    """The draft's ETag: changes whenever a PATCH (or a lifecycle move) changes what it edits."""
    return strong_etag({"status": agent.status, "draft": agent_draft_view(agent)})


def agent_is_runnable(agent: Agent) -> bool:
    """Published or deprecated with a current version, not archived, not deleted."""
    return agent.deleted_at is None and agent.status in RUNNABLE_STATUSES and agent.current_version_id is not None


def agent_has_unpublished_changes(agent: Agent) -> bool:
    if agent.current_version is None:
        return True
    return versioned_part(agent_draft_view(agent)) != versioned_part(agent_version_view(agent.current_version))


# A version never changes once published (AgentVersion.save refuses), so the versioned part
# of its configuration is decoded and shaped once per process for the lists. Bounded: the
# whole map is dropped when full (a miss costs one decode).
_VERSION_PARTS: dict[Any, dict[str, Any]] = {}
VERSION_PARTS_MAX = 4096


def agent_version_part(version_id: Any, config_text: str) -> dict[str, Any]:
    """``versioned_part(agent_version_view(version))`` of the version ``version_id``, whose
    stored configuration is ``config_text`` (its JSON, as PostgreSQL writes it)."""
    part = _VERSION_PARTS.get(version_id)
    if part is None:
        if len(_VERSION_PARTS) >= VERSION_PARTS_MAX:
            _VERSION_PARTS.clear()
        part = _VERSION_PARTS[version_id] = versioned_part(version_shaped(json.loads(config_text)))
    return part


def agent_row_has_unpublished_changes(draft: dict[str, Any], version_id: Any, config_text: str | None) -> bool:
    """``agent_has_unpublished_changes`` of a listed row, from its draft (``agent_draft_view``)
    and its current version's id and stored configuration."""
    if version_id is None or config_text is None:
        return True
    return versioned_part(draft) != agent_version_part(version_id, config_text)


def agent_warnings(agent: Agent) -> list[str]:
    """Non-blocking problems of the draft, shown with the agent: tool patterns matching
    nothing, allowed tools its runs would not be offered (a missing grant or module), models
    not in the catalog, and capability tags that look like grants."""
    config = agent_draft_config(agent)
    available = available_tool_names(organization=agent.organization)
    return [
        *tool_pattern_warnings(config, available),
        *tool_gap_warnings(agent=agent, config=config),
        *model_warnings(config, agent.organization_id),
        *capability_tag_warnings(agent=agent, config=config),
        *type_config_warnings(config),
    ]


def agent_stats(agent: Agent) -> dict[str, Any]:
    """The stats fields plus the derived averages (no query: counters are on the row).

    success_rate = successful / total * 100; timed-out runs are counted as failed and
    cancelled runs apart (cancelled_runs, not in total_runs; their tokens and cost are in
    the totals, since they were spent).
    """
    runs = agent.total_runs
    return {
        "total_runs": runs,
        "successful_runs": agent.successful_runs,
        "failed_runs": agent.failed_runs,
        "cancelled_runs": agent.cancelled_runs,
        "success_rate": round(agent.successful_runs * 100 / runs, 2) if runs else 0.0,
        "total_tokens_used": agent.total_tokens_used,
        "avg_tokens": round(agent.total_tokens_used / runs, 2) if runs else 0.0,
        "total_actions_taken": agent.total_actions_taken,
        "total_cost": str(agent.total_cost),
        "avg_cost": str((agent.total_cost / runs).quantize(Decimal("0.000001"))) if runs else "0.000000",
        "avg_response_time_ms": agent.avg_response_time_ms or 0,
        "last_run_at": agent.last_run_at.isoformat() if agent.last_run_at else None,
        "last_run_status": agent.last_run_status or None,
        "last_error": agent.last_error or None,
    }


def agent_goal_list(*, agent: Agent) -> QuerySet[AgentGoal]:
    return AgentGoal.objects.filter(agent=agent)


def agent_metrics(*, agent: Agent) -> dict[str, Any]:
    """``agents/{id}/metrics/``: stats, runtime state and the evaluated goals."""
    now = timezone.now()
    goals = [
        {
            "id": str(goal.pk),
            "name": goal.name,
            "metric": goal.success_metric or None,
            "target": str(goal.target_value) if goal.target_value is not None else None,
            "comparison": goal.comparison,
            "window": goal.window,
            "is_recurring": goal.is_recurring,
            "deadline": goal.deadline.isoformat() if goal.deadline else None,
            "priority": goal.priority,
            "current_value": str(goal.current_value) if goal.current_value is not None else None,
            "is_achieved": goal.is_achieved,
            "achieved_at": goal.achieved_at.isoformat() if goal.achieved_at else None,
            "evaluated_at": goal.evaluated_at.isoformat() if goal.evaluated_at else None,
            "status": goal_status(goal, now),
        }
        for goal in agent_goal_list(agent=agent)
    ]
    return {
        "agent_id": str(agent.pk),
        "runtime_state": agent_runtime_state(agent),
        **agent_stats(agent),
        "goals": goals,
    }


# --- Versions ---------------------------------------------------------------------------


def agent_version_list(*, agent: Agent) -> QuerySet[AgentVersion]:
    return AgentVersion.objects.filter(agent=agent).select_related("created_by")


def agent_version_get(*, agent: Agent, version: str) -> AgentVersion:
    found = agent_version_list(agent=agent).filter(version=version).first()
    if found is None:
        raise NotFound(f"Agent {agent.pk} has no version {version!r}.", details={"version": version})
    return found


def _config_at(agent: Agent, ref: str) -> dict[str, Any]:
    """A version's snapshot, ``draft`` (the row) or ``current``."""
    if ref == DRAFT:
        return snapshot(agent_draft_config(agent))
    if ref == "current":
        if agent.current_version is None:
            raise NotFound("The agent has no current version yet.", details={"version": ref})
        return snapshot(agent_version_config(agent.current_version))
    return snapshot(agent_version_config(agent_version_get(agent=agent, version=ref)))


def agent_version_diff(*, agent: Agent, from_ref: str, to_ref: str) -> dict[str, Any]:
    """Field by field, what changed from one version (or ``draft``/``current``) to another."""
    changes = config_diff(_config_at(agent, from_ref), _config_at(agent, to_ref))
    return {"agent_id": str(agent.pk), "from": from_ref, "to": to_ref, "identical": not changes, "changes": changes}


# --- Grants -------------------------------------------------------------------------------


def agent_grant_list(*, agent: Agent) -> list[dict[str, Any]]:
    rows = (
        AgentUserObjectPermission.objects.filter(content_object=agent)
        .select_related("user", "permission", "granted_by")
        .order_by("user__username", "permission__codename")
    )
    return [
        {
            "user_id": row.user_id,
            "username": row.user.get_username(),
            "permission": CODENAME_GRANTS.get(row.permission.codename, row.permission.codename),
            "granted_by": row.granted_by.get_username() if row.granted_by else None,
            "granted_at": row.granted_at,
        }
        for row in rows
    ]


def agent_rights_for(*, actor: Actor, agent: Agent) -> frozenset[str]:
    return agent_rights(actor, agent)


# --- Platform agents, marketplace, templates --------------------------------------------


def platform_agent_list() -> QuerySet[Agent]:
    """Platform agents organizations can use: published or deprecated, not private."""
    qs = Agent.objects.filter(
        organization__isnull=True,
        deleted_at__isnull=True,
        status__in=RUNNABLE_STATUSES,
        visibility__in=[Visibility.ORGANIZATION, Visibility.PUBLIC],
    ).select_related("current_version")
    return with_runtime_state(qs)


def platform_agent_get(*, agent_id: Any) -> Agent:
    pk = uuid_or_none(agent_id)
    agent = platform_agent_list().filter(pk=pk).first() if pk else None
    if agent is None:
        raise agent_not_found(agent_id)
    return agent


def agent_configuration_get(*, organization: Organization, agent: Agent) -> AgentConfiguration | None:
    return AgentConfiguration.objects.filter(organization=organization, agent=agent).first()


def agent_effective_config(*, version: AgentVersion, organization: Organization | None) -> dict[str, Any]:
    """The configuration a run uses: the version's, with the organization's overrides when
    the version belongs to a platform agent (agents.config.apply_overrides has the rules)."""
    config = agent_version_config(version)
    agent = version.agent
    if agent.organization_id is None and organization is not None:
        configuration = agent_configuration_get(organization=organization, agent=agent)
        if configuration is not None and configuration.is_active:
            config = apply_overrides(config, configuration.overrides)
    return config


def agent_version_warnings(version: AgentVersion) -> list[str]:
    """What a run of this version must log as a warning (deprecated versions still run)."""
    warnings = []
    if version.deprecated_at is not None or version.agent.status == AgentStatus.DEPRECATED:
        warnings.append(
            f"Agent {version.agent.name!r} version {version.version} is deprecated; it still runs but will be archived."
        )
    return warnings


def agent_get_for_execution(*, actor: Actor, agent_id: Any) -> Agent:
    """The agent ``actor`` may run: one of its organization's agents with the execute right,
    or a usable platform agent. Raises AgentNotFound / InsufficientPermissions."""
    pk = uuid_or_none(agent_id)
    agent = Agent.objects.select_related("current_version").filter(pk=pk).first() if pk else None
    if agent is None or agent.deleted_at is not None:
        raise agent_not_found(agent_id)
    if agent.organization_id is None:
        return platform_agent_get(agent_id=pk)
    # Grants only add rights: when the role alone may run the agent, they are not read.
    rights = agent_rights(actor, agent, grants=frozenset())
    if "execute" not in rights:
        rights = agent_rights(actor, agent)
    if not rights:
        raise agent_not_found(agent_id)
    if "execute" not in rights:
        raise ApiError(code="InsufficientPermissions", message="You may not execute this agent.")
    return agent


def agent_draft_publishable(agent: Agent) -> dict[str, Any]:
    """The draft validated exactly as publishing validates it (the draft was valid when saved,
    but the catalog may have moved on), normalised; raises InvalidAgentConfig."""
    draft = agent_draft_config(agent)
    # The lists' values the draft already had were checked when written (previous=draft).
    config = agent_config_validate(draft, organization_id=agent.organization_id, agent_id=agent.pk, previous=draft)
    if not render_system_prompt(config).strip():
        raise invalid_config(
            {"system_prompt": ["Give the agent a system prompt, a personality or instructions before publishing."]}
        )
    return config


DRAFT_RUN_WARNING = "Runs the unpublished draft of agent {name!r}, not a published version (a draft run)."


def agent_draft_run_config(*, agent: Agent) -> tuple[None, dict[str, Any], list[str]]:
    """For a draft run (the playground, ``"draft": true``): no version, the draft's
    configuration frozen as publishing would snapshot it, and the warning that says so.

    Refuses with Conflict for archived and deleted agents and for platform agents (their
    draft is the platform's, never an organization's run), InvalidAgentConfig for a draft
    publishing would refuse."""
    if agent.deleted_at is not None or agent.status == AgentStatus.ARCHIVED:
        raise ApiError(
            code="Conflict",
            message=f"Agent {agent.name!r} is {agent.status}; its draft does not run.",
            details={"status": agent.status},
        )
    if agent.organization_id is None:
        raise ApiError(code="Conflict", message="A platform agent's draft does not run; run a published version.")
    config = version_shaped(snapshot(agent_draft_publishable(agent)))
    return None, config, [DRAFT_RUN_WARNING.format(name=agent.name)]


def agent_run_config(
    *, agent: Agent, organization: Organization, version: AgentVersion | None = None
) -> tuple[AgentVersion, dict[str, Any], list[str]]:
    """For the runtime: (the version to run, its effective configuration, warnings to log).
    ``version``: one of the agent's published versions instead of the current one (the
    console's playground compares versions). A draft run: ``agent_draft_run_config``.

    Refuses with Conflict when the agent cannot run (draft, archived, deleted)."""
    if not agent_is_runnable(agent) or agent.current_version is None:
        raise ApiError(
            code="Conflict",
            message=f"Agent {agent.name!r} is {agent.status} and cannot run; publish it first.",
            details={"status": agent.status},
        )
    if version is not None and version.agent_id != agent.pk:
        raise ApiError(code="InvalidInput", message="That version belongs to another agent.")
    version = version or agent.current_version
    version.agent = agent  # the same row (checked above): not read a second time
    return version, agent_effective_config(version=version, organization=organization), agent_version_warnings(version)


def marketplace_list() -> QuerySet[Agent]:
    """Public agents anyone may copy: published or deprecated, of any organization or the platform."""
    return (
        Agent.objects.filter(visibility=Visibility.PUBLIC, deleted_at__isnull=True, status__in=RUNNABLE_STATUSES)
        .exclude(current_version__isnull=True)
        .select_related("current_version", "organization")
    )


def marketplace_get(*, agent_id: Any) -> Agent:
    pk = uuid_or_none(agent_id)
    agent = marketplace_list().filter(pk=pk).first() if pk else None
    if agent is None:
        raise agent_not_found(agent_id)
    return agent


def agent_template_list() -> QuerySet[AgentTemplate]:
    return AgentTemplate.objects.filter(is_active=True)


def agent_template_get(*, key: str) -> AgentTemplate:
    template = agent_template_list().filter(key=key).first()
    if template is None:
        raise NotFound(f"No agent template {key!r}.", details={"template": key})
    return template


def provider_connection_list(*, actor: Actor) -> QuerySet[ProviderConnection]:
    """The organization's connections and the platform's (read-only to the organization)."""
    return ProviderConnection.objects.filter(
        Q(organization_id=actor.organization.pk) | Q(organization__isnull=True)
    ).order_by("organization_id", "provider", "name")


def provider_connection_get(*, actor: Actor, connection_id: Any, writable: bool = False) -> ProviderConnection:
    pk = uuid_or_none(connection_id)
    qs = provider_connection_list(actor=actor)
    if writable:
        qs = qs.filter(organization_id=actor.organization.pk)
    connection = qs.filter(pk=pk).first() if pk else None
    if connection is None:
        raise ApiError(code="NotFound", message="Provider connection not found.")
    return connection


# --- Chains -------------------------------------------------------------------------------


def chain_list(*, actor: Actor) -> QuerySet[AgentChain]:
    return AgentChain.objects.filter(organization_id=actor.organization.pk)


def chain_get(*, actor: Actor, chain_id: Any) -> AgentChain:
    return one_or_not_found(chain_list(actor=actor), chain_id, "Chain not found.", details={"chain_id": str(chain_id)})


def chain_execution_list(*, actor: Actor) -> QuerySet[ChainExecution]:
    return ChainExecution.objects.filter(organization_id=actor.organization.pk).select_related("chain")


def chain_execution_get(*, actor: Actor, chain_execution_id: Any) -> ChainExecution:
    return one_or_not_found(
        chain_execution_list(actor=actor),
        chain_execution_id,
        "Chain execution not found.",
        details={"chain_execution_id": str(chain_execution_id)},
    )


def agent_names(agent_ids: list[Any]) -> dict[Any, str]:
    """Names of the agents with these ids (billing's usage page; registered in
    ``billing.report_sources`` by this app's ready())."""
    return dict(Agent.objects.filter(pk__in=agent_ids).values_list("pk", "name"))
