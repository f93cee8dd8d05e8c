"""Where other apps join the runtime, without the runtime importing their internals.

Each hook is a dotted path in settings (``AGENTRY_RUNTIME_HOOKS``) so the app that owns the
behaviour registers it: memory extraction after a run, the approval request for a held tool
call. A hook that is not registered does nothing, and says so in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


def _hooks(name: str) -> list:
    return [import_string(path) for path in getattr(settings, "AGENTRY_RUNTIME_HOOKS", {}).get(name, [])]


def after_execution_finished(execution_id: Any, *, execution: Any = None) -> None:
    """After the finishing transaction commits (memory extraction, chains, alerts).

    Each hook is called as ``hook(execution_id, execution=...)``: ``execution`` is the
    runtime's own instance of the run (or None), for facts that never change once the run
    exists (``parent_id``, ``trigger_type``), so a hook need not read the row to find out it
    has nothing to do. Anything the run wrote (status, totals) is read from the database.
    """
    for hook in _hooks("after_execution_finished"):
        transaction.on_commit(partial(hook, execution_id, execution=execution))


@dataclass(frozen=True)
class RetrievedData:
    """One item of reference data for the prompt (a memory, a document excerpt).

    The runtime puts every item in the fenced data block at the end of the system message,
    escaped, never among the instructions (``executions.runtime.context``). ``attributes``
    describe it to the model (type, trust, source).
    """

    kind: str
    content: str
    attributes: dict[str, str] = field(default_factory=dict)


def prompt_sections(*, execution: Any, config: dict[str, Any]) -> list[RetrievedData]:
    """Reference data for the prompt (relevant long-term memories, knowledge-base chunks).

    Called once per run, when the run starts or resumes; a failing hook is logged and skipped
    so an unavailable embedder never stops a run. Whatever a hook returns is data: a plain
    string becomes a data item too, so no hook can add to the instructions.
    """
    items: list[RetrievedData] = []
    for hook in _hooks("prompt_sections"):
        try:
            found = hook(execution=execution, config=config)
            items.extend(i if isinstance(i, RetrievedData) else RetrievedData("data", str(i)) for i in found if i)
        except Exception:
            logger.warning("prompt section hook %s failed; the run goes on without it", hook, exc_info=True)
    return items


def conversation_history(*, execution: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Earlier turns of the run's conversation (``conversation_id``), within the context window."""
    for hook in _hooks("conversation_history"):
        return list(hook(execution=execution, config=config))
    return []


def open_approval(*, execution: Any, step: Any, outcome: Any) -> dict[str, Any]:
    """Inside the transaction that holds the call; returns a summary of the request opened."""
    hooks = _hooks("open_approval")
    if not hooks:
        logger.error("a tool call needs approval but no approvals hook is installed")
        return {}
    return hooks[0](execution=execution, step=step, outcome=outcome)
