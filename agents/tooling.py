"""The one place the agents app asks the tools app about tools (for the agent's warnings):
which tools exist (allowed/denied pattern warnings) and which allowed ones its runs would not
offer for a missing capability grant or module.

The tools app sits above agents, so it registers what it knows here: ``tools/apps.py`` calls
``tools_catalog_set`` with its selectors (``tool_names_available``: the active tools the
organization may use, system tools plus its own; ``agent_tool_gaps``; ``agent_capabilities``)
and the capability names. Without it the reference's built-in tool names stand in, so a typo
such as ``crm_*x`` is still reported, and no gap or capability warning is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolsCatalog:
    tool_names: Callable[..., Iterable[str]]
    tool_gaps: Callable[..., list[dict[str, Any]]]
    agent_capabilities: Callable[..., Iterable[str]]
    capability_names: frozenset[str]


_catalog: ToolsCatalog | None = None


def tools_catalog_set(catalog: ToolsCatalog | None) -> None:
    """Called by the tools app's ready() (None: no tools app, as some tests want)."""
    global _catalog
    _catalog = catalog


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
    if _catalog is None:
        return list(REFERENCE_TOOL_NAMES)
    return list(_catalog.tool_names(organization=organization))


def tool_gap_warnings(*, agent: Any, config: dict[str, Any]) -> list[str]:
    """One warning per allowed tool the agent's runs would not be offered, saying what is
    missing and where to grant it (the tools app decides)."""
    if agent.organization_id is None or _catalog is None:
        return []  # a platform agent's grants are each organization's own
    gaps = _catalog.tool_gaps(organization_id=agent.organization_id, agent_id=agent.pk, config=config)
    return [gap["message"] for gap in gaps]


def capability_grant_names() -> frozenset[str]:
    """The tools' capability grant names (empty without the tools app)."""
    return _catalog.capability_names if _catalog is not None else frozenset()


def capability_tag_warnings(*, agent: Any, config: dict[str, Any]) -> list[str]:
    """The agent body's ``capabilities`` are descriptive tags (what the agent is for); they
    grant nothing. A tag spelled like a grant is most likely meant as one: say where grants go."""
    if _catalog is None:
        return []
    like_grants = [tag for tag in config.get("capabilities") or [] if tag in _catalog.capability_names]
    if not like_grants or agent.organization_id is None:
        return []
    granted = _catalog.agent_capabilities(organization_id=agent.organization_id, agent_id=agent.pk)
    return [
        f"capabilities: {tag!r} is a descriptive tag and grants nothing; tools that need the {tag} "
        f"capability get it from PUT /api/v1/agents/{agent.pk}/capabilities/."
        for tag in like_grants
        if tag not in granted
    ]
