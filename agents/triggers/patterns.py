"""Event types and the patterns that select them (``crm.contact.*``, ``auth.login.*``).

An event type is dot-separated lowercase segments (``crm.contact.created``). In a pattern,
``*`` stands for exactly one segment and ``**`` for one or more, so ``crm.contact.*`` matches
``crm.contact.created`` but not ``crm.contact.note.added``, and ``crm.**`` matches both.

``ai.*`` types are the platform's own events (``EVENT_TYPES``): ``executions.events`` writes them
to the event log and sends them to webhook endpoints, never posted to ``events/``, so an agent
pattern that can only match them would never fire and is refused.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_TYPE_CHARS = 120
SEGMENT = r"[a-z0-9][a-z0-9_\-]*"
EVENT_TYPE = re.compile(rf"^{SEGMENT}(\.{SEGMENT})*$")
PATTERN_SEGMENT = re.compile(rf"^(\*\*|\*|{SEGMENT})$")
RESERVED_PREFIX = "ai"

# Domain events the platform's own tools emit when they change an organization's data (the
# reference's ``crm.contact.created`` from its CRM tool): written to the event log and sent to
# webhooks like the ai.* ones, and dispatched to the organization's event-triggered agents as
# a posted event is (tools/builtins/crm_events.py), so agents react to other agents' work.
DOMAIN_EVENT_TYPES = (
    "crm.contact.created",
    "crm.contact.updated",
    "crm.contact.deleted",
    "crm.note.created",
)

# The ten platform events of the reference (automation event integration), then the domain events.
EVENT_TYPES = (
    "ai.agent.created",
    "ai.agent.updated",
    "ai.agent.deleted",
    "ai.agent.activated",
    "ai.agent.deactivated",
    "ai.execution.started",
    "ai.execution.completed",
    "ai.execution.failed",
    "ai.approval.requested",
    "ai.approval.resolved",
    # Beyond the reference's ten: a goal reached (issue #20).
    "ai.goal.achieved",
    # A guardian's monitoring rule breached (agents/types.py, executions/guardian.py).
    "ai.guardian.breach",
    *DOMAIN_EVENT_TYPES,
)


def event_type_problem(event_type: object) -> str | None:
    if not isinstance(event_type, str) or not event_type:
        return "An event type is required, such as crm.contact.created."
    if len(event_type) > MAX_TYPE_CHARS:
        return f"At most {MAX_TYPE_CHARS} characters."
    if not EVENT_TYPE.match(event_type):
        return (
            f"{event_type!r} is not an event type: lowercase words, digits, '_' or '-', "
            "separated by dots (crm.contact.created)."
        )
    return None


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern:
    parts = []
    for segment in pattern.split("."):
        if segment == "**":
            parts.append(r"[^.]+(?:\.[^.]+)*")
        elif segment == "*":
            parts.append(r"[^.]+")
        else:
            parts.append(re.escape(segment))
    return re.compile(r"^" + r"\.".join(parts) + r"$")


def pattern_matches(pattern: str, event_type: str) -> bool:
    return bool(_regex(pattern).match(event_type))


def pattern_problem(pattern: object, *, allow_platform: bool = False) -> str | None:
    """Why ``pattern`` could never match an event (None when it can).

    ``allow_platform``: the pattern selects the platform's own ``ai.*`` events (webhook
    endpoints) rather than posted events (agents' trigger_events).
    """
    if not isinstance(pattern, str) or not pattern.strip():
        return "A pattern must be a non-empty string."
    if len(pattern) > MAX_TYPE_CHARS:
        return f"{pattern[:40]!r}… is longer than any event type ({MAX_TYPE_CHARS} characters)."
    segments = pattern.split(".")
    for segment in segments:
        if not PATTERN_SEGMENT.match(segment):
            hint = " ('*' replaces a whole segment)" if "*" in segment else ""
            return (
                f"{pattern!r} can never match: {segment!r} is not a lowercase word, '*' or '**'{hint}; "
                "event types look like crm.contact.created."
            )
    if allow_platform:
        if not any(pattern_matches(pattern, event_type) for event_type in EVENT_TYPES):
            return f"{pattern!r} matches none of the platform events ({', '.join(EVENT_TYPES)})."
        return None
    if segments[0] == RESERVED_PREFIX:
        return f"{pattern!r} can never match: ai.* events are the platform's own and cannot be posted."
    return None
