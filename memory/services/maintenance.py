"""Keeping long-term memory small and current: consolidation, pruning, expiry, re-embedding.

- Consolidation clusters near-duplicates (cosine similarity > MEMORY_DEDUPE_SIMILARITY within
  the same subject and model) and merges each cluster into its best member.
- Pruning drops memories with importance < 3, accessed fewer than 2 times and older than 30
  days (reference defaults, settings MEMORY_PRUNE_*), and only for an agent that holds at
  least MEMORY_MAINTENANCE_MIN_MEMORIES (100) memories: a young agent keeps what it has.
- Expired memories (``expires_at`` past) are deleted whatever the agent's size.
- Re-embedding moves every row to another model, in batches, each committed on its own, so
  an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from memory.embedders import Embedder, get_embedder
from memory.models import Document, KnowledgeChunk, Memory, SourceTrust
from memory.selectors import expired_q, memory_agents_for_maintenance
from memory.services.common import UsageOwner, record_embedding_usage

logger = logging.getLogger(__name__)

# Pairwise similarities are computed blockwise (rows x group) to bound memory use; a group
# larger than this is consolidated on its most recent rows (N^2 work otherwise).
BLOCK_ROWS = 1024
MAX_GROUP_ROWS = 20_000

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


@dataclass
class ConsolidationResult:
    memories: int = 0
    clusters: int = 0
    removed: int = 0


def _clusters(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Groups of indices linked by similarity > threshold (union-find over the pairs)."""
    count = len(vectors)
    parent = list(range(count))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.clip(norms, 1e-12, None)
    for start in range(0, count, BLOCK_ROWS):
        block = unit[start : start + BLOCK_ROWS] @ unit.T
        rows, cols = np.nonzero(block > threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if c > i:
                a, b = find(i), find(c)
                if a != b:
                    parent[b] = a
    groups: dict[int, list[int]] = {}
    for i in range(count):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def memory_consolidate(
    *, organization_id: Any, agent_id: Any, dry_run: bool = False, threshold: float | None = None
) -> ConsolidationResult:
    """Merge clusters of near-duplicate memories of one agent into one memory each.

    The kept memory is a trusted one if the cluster has any, then the most important (then
    most confident, most used, oldest); it takes the highest importance and confidence, the
    union of tags and the latest expiry (none if any never expires) of the members of its own
    trust, and the sum of accesses and the latest access of all.
    """
    threshold = settings.MEMORY_DEDUPE_SIMILARITY if threshold is None else threshold
    result = ConsolidationResult()
    base = Memory.objects.filter(organization_id=organization_id, agent_id=agent_id)
    result.memories = base.count()
    if result.memories < settings.MEMORY_MAINTENANCE_MIN_MEMORIES:
        return result
    groups = (
        base.filter(embedding__isnull=False)
        .values("embedding_model", "subject_type", "subject_id")
        .distinct()
        .order_by("embedding_model", "subject_type", "subject_id")
    )
    for group in groups:
        rows = list(
            base.filter(embedding__isnull=False, **group)
            .order_by("-created_at")
            .values_list("pk", "embedding")[:MAX_GROUP_ROWS]
        )
        if len(rows) < 2:
            continue
        ids = [pk for pk, _ in rows]
        vectors = np.asarray([np.asarray(vector, dtype=np.float32) for _, vector in rows])
        for cluster in _clusters(vectors, threshold):
            result.clusters += 1
            result.removed += len(cluster) - 1
            if not dry_run:
                _merge([ids[i] for i in cluster])
    return result


def _merge(ids: list[Any]) -> None:
    with transaction.atomic():
        members = list(Memory.objects.select_for_update().filter(pk__in=ids).defer("embedding"))
        if len(members) < 2:
            return  # changed meanwhile
        # A trusted memory is kept over untrusted near-copies, and takes nothing from them:
        # consolidating must not launder what was learned from outside content.
        members.sort(
            key=lambda m: (
                m.source_trust == SourceTrust.UNTRUSTED,
                -m.importance,
                -m.confidence,
                -m.access_count,
                m.created_at,
            )
        )
        keep, others = members[0], members[1:]
        peers = [m for m in members if m.source_trust == keep.source_trust]
        keep.importance = max(m.importance for m in peers)
        keep.confidence = max(m.confidence for m in peers)
        keep.access_count = sum(m.access_count for m in members)
        accessed = [m.last_accessed_at for m in members if m.last_accessed_at]
        keep.last_accessed_at = max(accessed) if accessed else None
        keep.tags = sorted({t for m in peers for t in m.tags})
        expiries = [m.expires_at for m in peers]
        keep.expires_at = None if any(e is None for e in expiries) else max(e for e in expiries if e)
        keep.save(
            update_fields=[
                "importance",
                "confidence",
                "access_count",
                "last_accessed_at",
                "tags",
                "expires_at",
                "updated_at",
            ]
        )
        Memory.objects.filter(pk__in=[m.pk for m in others]).delete()


def prunable_q(now: Any = None) -> Q:
    now = now or timezone.now()
    return Q(
        importance__lt=settings.MEMORY_PRUNE_BELOW_IMPORTANCE,
        access_count__lt=settings.MEMORY_PRUNE_BELOW_ACCESS_COUNT,
        created_at__lt=now - timedelta(days=settings.MEMORY_PRUNE_OLDER_THAN_DAYS),
    )


def memory_prune(*, organization_id: Any, agent_id: Any, dry_run: bool = False) -> int:
    """Drop the agent's low-importance, old, rarely used memories (only at 100+ memories)."""
    base = Memory.objects.filter(organization_id=organization_id, agent_id=agent_id)
    if base.count() < settings.MEMORY_MAINTENANCE_MIN_MEMORIES:
        return 0
    doomed = base.filter(prunable_q())
    if dry_run:
        return doomed.count()
    deleted, _ = doomed.delete()
    return deleted


def memories_expire(*, dry_run: bool = False) -> int:
    expired = Memory.objects.filter(expired_q())
    if dry_run:
        return expired.count()
    deleted, _ = expired.delete()
    return deleted


@dataclass
class MaintenanceResult:
    agents: int = 0
    clusters: int = 0
    merged_away: int = 0
    pruned: int = 0
    expired: int = 0


def memory_maintain(
    *,
    consolidate: bool = True,
    prune: bool = True,
    dry_run: bool = False,
    agent_id: Any = None,
    organization_id: Any = None,
    progress: Progress = _quiet,
) -> MaintenanceResult:
    """Consolidate, then prune, every agent holding enough memories; delete expired ones."""
    total = MaintenanceResult()
    if not agent_id:
        total.expired = memories_expire(dry_run=dry_run)
        progress(f"expired memories {'to delete' if dry_run else 'deleted'}: {total.expired}")
    agents = memory_agents_for_maintenance(
        minimum=settings.MEMORY_MAINTENANCE_MIN_MEMORIES, agent_id=agent_id, organization_id=organization_id
    )
    progress(f"{len(agents)} agent(s) hold at least {settings.MEMORY_MAINTENANCE_MIN_MEMORIES} memories")
    for index, row in enumerate(agents, start=1):
        line = f"[{index}/{len(agents)}] agent {row['agent_id']} (organization {row['organization_id']}): {row['count']} memories"
        if consolidate:
            merged = memory_consolidate(
                organization_id=row["organization_id"], agent_id=row["agent_id"], dry_run=dry_run
            )
            total.clusters += merged.clusters
            total.merged_away += merged.removed
            line += f", {merged.clusters} cluster(s) of near-duplicates, {merged.removed} merged away"
        if prune:
            pruned = memory_prune(organization_id=row["organization_id"], agent_id=row["agent_id"], dry_run=dry_run)
            total.pruned += pruned
            line += f", {pruned} pruned"
        total.agents += 1
        progress(line + (" (dry run)" if dry_run else ""))
    return total


@dataclass
class ReembedResult:
    total: int = 0
    done: int = 0
    batches: int = 0


def _reembed_rows(
    *,
    model: type[Memory] | type[KnowledgeChunk],
    embedder_for: Callable[[Any], Embedder],
    target: str,
    batch_size: int,
    filters: dict[str, Any],
    progress: Progress,
    label: str,
    limit: int | None,
) -> ReembedResult:
    todo = model.objects.filter(**filters).filter(Q(embedding__isnull=True) | ~Q(embedding_model=target))
    result = ReembedResult(total=todo.count())
    progress(f"{label}: {result.total} to re-embed with {target}")
    last_pk = None
    while result.total and (limit is None or result.done < limit):
        qs = todo.order_by("pk")
        if last_pk is not None:
            qs = qs.filter(pk__gt=last_pk)  # keyset: a row that keeps failing is not retried forever
        size = batch_size if limit is None else min(batch_size, limit - result.done)
        rows = list(qs.values_list("pk", "organization_id", "content")[:size])
        if not rows:
            break
        last_pk = rows[-1][0]
        by_org: dict[Any, list[tuple]] = {}
        for row in rows:
            by_org.setdefault(row[1], []).append(row)
        for organization_id, group in by_org.items():
            embedder = embedder_for(organization_id)
            batch = embedder.embed([content for _, _, content in group])  # outside the transaction
            with transaction.atomic():
                for (pk, _, _), vector in zip(group, batch.vectors, strict=True):
                    model.objects.filter(pk=pk).update(embedding=vector, embedding_model=embedder.name)
                if batch.provider != "local":
                    record_embedding_usage(owner=UsageOwner.for_organization_id(organization_id), batch=batch)
            result.done += len(group)
        result.batches += 1
        percent = 100.0 * result.done / result.total
        progress(f"{label}: {result.done}/{result.total} ({percent:.1f}%)")
    return result


def memories_reembed(
    *,
    embedder_spec: str,
    batch_size: int = 256,
    agent_id: Any = None,
    organization_id: Any = None,
    include_knowledge: bool = True,
    limit: int | None = None,
    progress: Progress = _quiet,
) -> dict[str, ReembedResult]:
    """Re-embed every memory (and knowledge chunk) not yet embedded with ``embedder_spec``.

    Each batch commits on its own; running it again continues with the rows still to do.
    Search compares only vectors of the configured model (MEMORY_EMBEDDER): re-embed, switch
    the setting, then re-embed again to catch rows stored in between.
    """
    embedders: dict[Any, Embedder] = {}

    def embedder_for(org_id: Any) -> Embedder:
        if org_id not in embedders:
            embedders[org_id] = get_embedder(embedder_spec, organization_id=org_id)
        return embedders[org_id]

    target = get_embedder(embedder_spec).name
    filters: dict[str, Any] = {}
    if organization_id:
        filters["organization_id"] = organization_id
    results = {
        "memories": _reembed_rows(
            model=Memory,
            embedder_for=embedder_for,
            target=target,
            batch_size=batch_size,
            filters={**filters, **({"agent_id": agent_id} if agent_id else {})},
            progress=progress,
            label="memories",
            limit=limit,
        )
    }
    if include_knowledge and not agent_id:
        results["knowledge chunks"] = _reembed_rows(
            model=KnowledgeChunk,
            embedder_for=embedder_for,
            target=target,
            batch_size=batch_size,
            filters=filters,
            progress=progress,
            label="knowledge chunks",
            limit=limit,
        )
        # A document is in the new model's space once none of its chunks is left behind.
        behind = KnowledgeChunk.objects.filter(Q(embedding__isnull=True) | ~Q(embedding_model=target))
        Document.objects.filter(**filters, chunk_count__gt=0).exclude(pk__in=behind.values("document_id")).update(
            embedding_model=target
        )
    return results
