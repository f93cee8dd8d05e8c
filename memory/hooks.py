"""Where memory joins the runtime (registered in settings.AGENTRY_RUNTIME_HOOKS).

- ``prompt_sections``: the relevant long-term memories and knowledge-base excerpts, once per
  run start or resume, as data items the runtime fences off from the instructions (with
  each memory's type, trust and confidence). An unavailable embedder never stops a run: the
  run goes on without them, and says so in its log.
- ``conversation_history``: the earlier turns of the run's conversation.
- ``after_execution_finished``: records the turn in the conversation at once (so the caller's
  next turn sees it); queues extraction and the Episode on the worker when extraction calls a
  model, and writes the Episode at once when it does not (no LLM call here either way).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from executions.hooks import RetrievedData
from executions.models import Execution, ExecutionLog
from memory.embedders import EmbedderUnavailable, get_embedder
from memory.models import Memory
from memory.selectors import ChunkHit, MemoryHit, agent_knowledge_base_ids, chunk_search
from memory.services.common import record_embedding_usage, run_subject
from memory.services.conversations import conversation_append, conversation_history_for
from memory.services.extraction import execution_memory_process, extraction_needs_model
from memory.services.memories import memory_retrieve
from memory.tasks import enqueue_after_execution

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 2000


def _log(execution: Any, level: str, message: str, **metadata: Any) -> None:
    ExecutionLog.objects.create(execution=execution, level=level, message=message, metadata=metadata)


def memory_items(hits: list[MemoryHit]) -> list[RetrievedData]:
    return [
        RetrievedData(
            "memory",
            h.memory.content,
            {
                "type": h.memory.memory_type,
                "trust": h.memory.source_trust,
                "confidence": f"{h.memory.confidence:.2f}",
            },
        )
        for h in hits
    ]


def knowledge_items(hits: list[ChunkHit]) -> list[RetrievedData]:
    return [
        RetrievedData(
            "document_excerpt",
            hit.chunk.content,
            {"n": str(number), "source": hit.document_title + (f" — {hit.chunk.heading}" if hit.chunk.heading else "")},
        )
        for number, hit in enumerate(hits, start=1)
    ]


def prompt_sections(*, execution: Any, config: dict[str, Any]) -> list[RetrievedData]:
    query = (execution.task or "").strip()[:MAX_QUERY_CHARS]
    if not query:
        return []
    kb_ids = agent_knowledge_base_ids(organization_id=execution.organization_id, agent_id=execution.agent_id)
    has_memories = Memory.objects.filter(
        organization_id=execution.organization_id, agent_id=execution.agent_id, embedding__isnull=False
    ).exists()
    if not kb_ids and not has_memories:
        return []  # nothing to search: no embedding call (and no embedding cost)
    try:
        embedder = get_embedder(organization_id=execution.organization_id)
        batch = embedder.embed([query])
    except EmbedderUnavailable as exc:
        logger.warning("memory retrieval skipped for execution %s: %s", execution.pk, exc)
        _log(execution, "warn", f"Memory retrieval skipped, the run goes on without memories: {exc}")
        return []
    record_embedding_usage(owner=execution, batch=batch)
    vector = batch.vectors[0]
    memories = memory_retrieve(
        organization_id=execution.organization_id,
        agent_id=execution.agent_id,
        vector=vector,
        model=embedder.name,
        subject=run_subject(execution.input.get("context")),
    )
    chunks = chunk_search(
        organization_id=execution.organization_id,
        knowledge_base_ids=kb_ids,
        vector=vector,
        model=embedder.name,
        k=settings.MEMORY_KNOWLEDGE_K,
    )
    if memories or chunks:
        _log(
            execution,
            "info",
            f"Retrieved {len(memories)} memories and {len(chunks)} knowledge excerpts.",
            memory_ids=[str(h.memory.pk) for h in memories],
            chunk_ids=[h.chunk.pk for h in chunks],
        )
    return memory_items(memories) + knowledge_items(chunks)


def conversation_history(*, execution: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    return conversation_history_for(execution=execution, config=config)


def after_execution_finished(execution_id: Any, *, execution: Any = None) -> None:
    # The runtime's instance is not the finished row (totals, output): read it. The row alone:
    # what follows here uses the organization's and agent's ids, never their rows (the
    # extraction task, which stores memories under them, reads its own with them).
    execution = None
    try:
        execution = Execution.objects.filter(pk=execution_id).first()
        if execution is not None:
            conversation_append(execution=execution)
    except Exception:  # the after-run task appends again (idempotently) if this failed
        logger.exception("could not record execution %s in its conversation now", execution_id)
    if execution is not None and not extraction_needs_model(execution):
        # No model call to wait for: the Episode is one insert, cheaper here than a queued
        # task (a broker round trip, a task and its reads on another worker thread). Should
        # it fail, the task is queued as before and writes it.
        try:
            execution_memory_process(execution_id=execution_id, execution=execution)
            return
        except Exception:
            logger.warning("could not record the Episode of execution %s now; queued", execution_id, exc_info=True)
    try:
        enqueue_after_execution(execution_id)
    except Exception:
        logger.exception("could not queue memory extraction for execution %s", execution_id)
