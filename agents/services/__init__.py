"""Writes for agents. Every function is keyword-only, atomic, and records what it did.

Import from here: ``from agents.services import agent_create, agent_publish, ...``.
The execution runtime uses ``agent_run_started`` and ``agent_stats_record_run``.
"""

from agents.services.agents import (
    agent_activate,
    agent_archive,
    agent_create,
    agent_deactivate,
    agent_delete,
    agent_deprecate,
    agent_update,
)
from agents.services.goals import agent_goals_evaluate, agent_goals_evaluate_all, agent_goals_sync
from agents.services.grants import agent_grant, agent_revoke
from agents.services.platform import (
    agent_configuration_delete,
    agent_configuration_set,
    agent_create_from_template,
    agent_template_sync,
    apply_overrides,
    marketplace_agent_copy,
)
from agents.services.stats import agent_run_started, agent_stats_record_run
from agents.services.versions import agent_publish, agent_rollback

__all__ = [
    "agent_activate",
    "agent_archive",
    "agent_configuration_delete",
    "agent_configuration_set",
    "agent_create",
    "agent_create_from_template",
    "agent_deactivate",
    "agent_delete",
    "agent_deprecate",
    "agent_goals_evaluate",
    "agent_goals_evaluate_all",
    "agent_goals_sync",
    "agent_grant",
    "agent_publish",
    "agent_revoke",
    "agent_rollback",
    "agent_run_started",
    "agent_stats_record_run",
    "agent_template_sync",
    "agent_update",
    "apply_overrides",
    "marketplace_agent_copy",
]
