"""Memories stored without a vector (added in the admin, or while the embedder was down):
the ``memory.embed_pending`` task embeds them in batches and merges the near-duplicates."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from memory.embedders import Embedder, get_embedder
from memory.models import Memory
from memory.selectors import Subject
from memory.services.common import UsageOwner, record_embedding_usage
from memory.services.memories import MemoryInput, _lock_agent_memories, _nearest_duplicate, _reinforce


def memory_embed_pending(
    *, limit: int = 1000, batch_size: int = 64, embedder: Embedder | None = None
) -> dict[str, int]:
    """Embed memories stored without a vector (admin edits, an embedder outage during
    extraction); a pending row that turns out to duplicate an embedded one is merged into it."""
    done = merged = 0
    while done + merged < limit:
        # Every row taken is embedded or merged (deleted) below, so the next query moves on;
        # an embedder failure raises and the task tries again later.
        rows = list(
            Memory.objects.filter(embedding__isnull=True)
            .order_by("created_at", "id")
            .values("pk", "organization_id", "agent_id", "content")[: min(batch_size, limit - done - merged)]
        )
        if not rows:
            break
        by_org: dict[Any, list[Any]] = {}
        for row in rows:
            by_org.setdefault(row["organization_id"], []).append(row)
        for organization_id, group in by_org.items():
            current = embedder or get_embedder(organization_id=organization_id)
            batch = current.embed([row["content"] for row in group])
            with transaction.atomic():
                for row, vector in zip(group, batch.vectors, strict=True):
                    _lock_agent_memories(organization_id, row["agent_id"])
                    memory = Memory.objects.select_for_update().filter(pk=row["pk"], embedding__isnull=True).first()
                    if memory is None:
                        continue  # embedded or deleted meanwhile
                    duplicate = _nearest_duplicate(
                        organization_id=organization_id,
                        agent_id=row["agent_id"],
                        vector=vector,
                        model=current.name,
                        subject=Subject(memory.subject_type, memory.subject_id) if memory.subject_id else None,
                        exclude=[memory.pk],
                    )
                    if duplicate is not None:
                        _reinforce(
                            duplicate.memory.pk,
                            MemoryInput(
                                content=memory.content,
                                memory_type=memory.memory_type,
                                confidence=memory.confidence,
                                importance=memory.importance,
                                tags=list(memory.tags),
                            ),
                        )
                        memory.delete()
                        merged += 1
                        continue
                    memory.embedding, memory.embedding_model = vector, current.name
                    memory.save(update_fields=["embedding", "embedding_model", "updated_at"])
                    done += 1
                if batch.provider != "local":
                    record_embedding_usage(owner=UsageOwner.for_organization_id(organization_id), batch=batch)
    return {"embedded": done, "merged": merged}
