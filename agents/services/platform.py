"""Platform agents with per-organization overrides, templates, and the marketplace."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from django.db import transaction

from agents.config import OVERRIDABLE, agent_version_config, apply_overrides, default_config, merge_config
from agents.models import Agent, AgentConfiguration, AgentTemplate
from agents.services.agents import agent_create
from agents.services.common import record
from agents.template_data import TEMPLATES
from agents.types import type_config_for_copy
from agents.validation import agent_config_validate, invalid_config
from config.api.errors import ApiError, NotFound

if TYPE_CHECKING:
    from accounts.access import Actor


def agent_configuration_validate(agent: Agent, overrides: Any) -> dict[str, Any]:
    if not isinstance(overrides, dict):
        raise invalid_config({"overrides": ["Must be an object."]})
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise invalid_config(
            {f"overrides.{key}": [f"Cannot be overridden; use {list(OVERRIDABLE)}."] for key in unknown}
        )
    if agent.current_version is None:
        raise ApiError(code="Conflict", message="The platform agent has no published version.")
    # Check the result, not the fragment: the merged configuration must be valid as a whole.
    merged = merge_config(default_config(), agent_version_config(agent.current_version))
    try:
        agent_config_validate(apply_overrides(merged, overrides), previous=merged)
    except ApiError as exc:
        errors = exc.details.get("validation_errors", {})
        raise invalid_config({f"overrides.{key}": value for key, value in errors.items()}) from exc
    return overrides


@transaction.atomic
def agent_configuration_set(
    *, actor: Actor, agent: Agent, overrides: dict[str, Any], is_active: bool = True
) -> AgentConfiguration:
    """Create or replace the actor's organization's configuration of a platform agent."""
    if agent.organization_id is not None:
        raise NotFound("Only platform agents take organization configurations.")
    overrides = agent_configuration_validate(agent, overrides)
    defaults: dict[str, Any] = {"overrides": overrides, "is_active": is_active, "created_by": actor.user}
    configuration, created = AgentConfiguration.objects.select_for_update().get_or_create(
        organization=actor.organization, agent=agent, defaults=defaults
    )
    if not created:
        configuration.overrides, configuration.is_active = overrides, is_active
        configuration.save(update_fields=["overrides", "is_active", "updated_at"])
    record(
        actor=actor,
        agent=agent,
        organization=actor.organization,
        action="agent.configuration_set",
        target=configuration,
        summary={"overrides": sorted(overrides), "is_active": is_active},
    )
    return configuration


@transaction.atomic
def agent_configuration_delete(*, actor: Actor, agent: Agent) -> None:
    deleted, _ = AgentConfiguration.objects.filter(organization=actor.organization, agent=agent).delete()
    if not deleted:
        raise NotFound("This organization has no configuration for the agent.")
    record(actor=actor, agent=agent, organization=actor.organization, action="agent.configuration_deleted")


def agent_create_from_template(*, actor: Actor, template: AgentTemplate, data: dict[str, Any]) -> Agent:
    """A new draft from a template; ``data`` (any agent field) wins over the template."""
    config = merge_config(copy.deepcopy(template.config), data)
    config.setdefault("name", template.name)
    config.setdefault("agent_type", template.agent_type)
    config.setdefault("description", template.description)
    return agent_create(actor=actor, data=config, template=template)


def marketplace_agent_copy(*, actor: Actor, source: Agent, name: str | None = None) -> Agent:
    """Copy a public agent's current version into the actor's organization as a new draft."""
    if source.current_version is None:
        raise NotFound("The agent has no published version to copy.")
    config = agent_version_config(source.current_version)
    config["name"] = name or config["name"]
    config["description"] = config.get("description") or source.description
    config, dropped = type_config_for_copy(config, same_organization=source.organization_id == actor.organization.pk)
    if dropped:
        # Said on the copy, not dropped quietly: its owner sets its own agents there.
        config["metadata"] = {
            **(config.get("metadata") or {}),
            "not_copied": [f"type_config.{key}: the source organization's agents" for key in dropped],
        }
    return agent_create(actor=actor, data=config, copied_from=source)


def agent_template_sync() -> str:
    """Create or refresh the built-in templates (idempotent; `manage.py sync_platform`)."""
    created = updated = 0
    for item in TEMPLATES:
        _, was_created = AgentTemplate.objects.update_or_create(
            key=item["key"],
            defaults={
                "name": item["name"],
                "agent_type": item["agent_type"],
                "description": item["description"],
                "config": item["config"],
            },
        )
        created += was_created
        updated += not was_created
    return f"agent templates: {created} created, {updated} refreshed"
