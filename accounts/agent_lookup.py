"""Whether a person may see an agent, for the tenant layer's own endpoints.

``POST activity/`` names an agent, and what a person may see of agents (visibility, owner,
per-agent grants) is the agents app's rule, above this one. ``agents/apps.py`` registers its
check here (``agent_visible_set``); unregistered, the check refuses with ImproperlyConfigured
rather than let any agent through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

# (actor, agent_id) -> whether the actor may see that agent of its organization
AgentVisible = Callable[[Any, Any], bool]

_agent_visible: AgentVisible | None = None


def agent_visible_set(check: AgentVisible | None) -> None:
    global _agent_visible
    _agent_visible = check


def agent_visible(actor: Any, agent_id: Any) -> bool:
    if _agent_visible is None:
        raise ImproperlyConfigured("No agent visibility check is registered (the agents app does it in its ready()).")
    return _agent_visible(actor, agent_id)
