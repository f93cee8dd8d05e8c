"""The one place the agents app asks which tools exist (for allowed/denied pattern warnings).

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
