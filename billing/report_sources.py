"""What billing's usage reports read from the apps above it, registered in their ready().

Usage rows are billing's; runs (executions) and agents' names (agents) are not, and billing
sits below both apps, so it never imports them: ``executions/apps.py`` registers
``run_counts`` and ``agents/apps.py`` registers ``agent_names``. Unregistered (never in a
configured platform) a report refuses with ImproperlyConfigured rather than show no runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from django.core.exceptions import ImproperlyConfigured

# organization=, start=, end=, group_by= -> rows {"key", "runs"} (and "tool_calls" by user), or
# None when runs are not split that way (provider, model)
RunCounts = Callable[..., Iterable[Any] | None]
# agent ids -> {id: name} for the agents that exist
AgentNames = Callable[[list[Any]], dict[Any, str]]

_run_counts: RunCounts | None = None
_agent_names: AgentNames | None = None


def run_counts_set(source: RunCounts | None) -> None:
    global _run_counts
    _run_counts = source


def agent_names_set(source: AgentNames | None) -> None:
    global _agent_names
    _agent_names = source


def run_counts(*, organization: Any, start: date, end: date, group_by: str) -> Iterable[Any] | None:
    if _run_counts is None:
        raise ImproperlyConfigured("No run counts are registered (the executions app does it in its ready()).")
    return _run_counts(organization=organization, start=start, end=end, group_by=group_by)


def agent_names(agent_ids: list[Any]) -> dict[Any, str]:
    if _agent_names is None:
        raise ImproperlyConfigured("No agent names are registered (the agents app does it in its ready()).")
    return _agent_names(agent_ids)
