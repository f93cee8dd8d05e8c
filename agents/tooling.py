"""The one place the agents app asks the tools app about tools (for the agent's warnings):
which tools exist (allowed/denied pattern warnings) and which allowed ones its runs would not
offer for a missing capability grant or module.

HOOK for the tools app: when ``tools.selectors.tool_names_available(*, organization)`` exists
(returning the names of the active tools the organization may use: system tools plus its
own), it is used. Until then the reference's built-in tool names stand in, so a typo such
as ``crm_*x`` is still reported.
"""

from __future__ import annotations

from typing import Any

# The built-in tools of the core reference (ai_agent_tools seeds).
REFERENCE_TOOL_NAMES = (
    "crm_get_contact",
    "crm_search_contacts",
    "crm_create_contact",
    "crm_update_contact",
    "crm_add_note",
    "email_send",
    "email_draft",
    "calendar_check_availability",
    "calendar_create_event",
    "task_create",
    "notify_user",
    "data_query",
    "data_aggregate",
    "data_export",
    "web_search",
    "web_scrape",
    "trigger_workflow",
    "search_agent_memories",
    "wait",
)


def available_tool_names(*, organization: Any) -> list[str] | None:
    """Tool names the organization can use; None when they cannot be known."""
    try:
        from tools.selectors import tool_names_available  # type: ignore[import-not-found,attr-defined]
    except ImportError:
        return list(REFERENCE_TOOL_NAMES)
    return list(tool_names_available(organization=organization))


def tool_gap_warnings(*, agent: Any, config: dict[str, Any]) -> list[str]:
    """One warning per allowed tool the agent's runs would not be offered, saying what is
    missing and where to grant it (the tools app decides; a function-level import keeps the
    agents app below it)."""
    if agent.organization_id is None:
        return []  # a platform agent's grants are each organization's own
    from tools.selectors import agent_tool_gaps

    gaps = agent_tool_gaps(organization_id=agent.organization_id, agent_id=agent.pk, config=config)
    return [gap["message"] for gap in gaps]


def capability_tag_warnings(*, agent: Any, config: dict[str, Any]) -> list[str]:
    """The agent body's ``capabilities`` are descriptive tags (what the agent is for); they
    grant nothing. A tag spelled like a grant is most likely meant as one: say where grants go."""
    from tools.models import Capability
    from tools.selectors import agent_capabilities

    like_grants = [tag for tag in config.get("capabilities") or [] if tag in set(Capability.values)]
    if not like_grants or agent.organization_id is None:
        return []
    granted = agent_capabilities(organization_id=agent.organization_id, agent_id=agent.pk)
    return [
        f"capabilities: {tag!r} is a descriptive tag and grants nothing; tools that need the {tag} "
        f"capability get it from PUT /api/v1/agents/{agent.pk}/capabilities/."
        for tag in like_grants
        if tag not in granted
    ]
