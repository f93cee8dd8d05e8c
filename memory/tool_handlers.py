"""The memory app's tools: handlers the tool gateway calls by key (``tools.handlers``).

Registered from ``MemoryConfig.ready()``, so the tools app never imports memory (memory sits
above tools: it reads their untrusted-output flags and reports failures as ``ToolError``).
"""

from __future__ import annotations

from typing import Any

from memory.embedders import EmbedderUnavailable
from memory.services import knowledge_search as search
from tools.builtins.base import Invocation, ToolError


def knowledge_search(call: Invocation) -> dict[str, Any]:
    """The knowledge bases linked to the agent, searched by meaning."""
    try:
        hits = search(
            organization_id=call.organization_id,
            agent_id=call.agent_id,
            query=call.arguments["query"],
            k=int(call.arguments.get("k") or 5),
        )
    except EmbedderUnavailable as exc:
        raise ToolError(f"Knowledge search is unavailable right now: {exc}") from exc
    # Passages are data for the model, not instructions (the system prompt says so too).
    return {"results": [{k: str(v) if k.endswith("_id") else v for k, v in hit.items()} for hit in hits]}
