"""Writes for long-term memories: store (with near-duplicate merging), edit, forget, retrieve
for a run (which counts accesses), and embed rows that were stored without a vector."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from accounts.access import Actor
from accounts.services import activity_record
from config.api.errors import InvalidInput
from memory.embedders import Embedder, EmbedderUnavailable, EmbeddingBatch, get_embedder
from memory.models import Memory, MemorySource, MemoryType, SourceTrust
from memory.selectors import MemoryHit, Subject, memory_search
from memory.services.common import UsageOwner, record_embedding_usage
from memory.tasks import enqueue_embed_pending

logger = logging.getLogger(__name__)

# A confirmed memory gets more certain, never certain: 0.99 leaves room for doubt.
MAX_MERGED_CONFIDENCE = 0.99
# What a memory learned from outside content (SourceTrust.UNTRUSTED) may be worth at most,
# however often it is "confirmed": a page repeating a claim in every run proves nothing.
UNTRUSTED_MAX_CONFIDENCE = 0.5
MAX_TAGS = 20


@dataclass
class MemoryInput:
    content: str
    memory_type: str
    confidence: float = 0.8
    importance: int = 5
    subject_type: str = ""
    subject_id: str = ""
    tags: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
    source_trust: str = SourceTrust.TRUSTED


def memory_input_validate(raw: dict[str, Any]) -> MemoryInput:
    """Check one memory's fields (API, admin and extraction alike); InvalidInput lists each problem."""
    errors: dict[str, list[str]] = {}
    content = raw.get("content")
    if not isinstance(content, str) or not content.strip():
        errors["content"] = ["A non-empty string is required."]
    elif len(content) > settings.MEMORY_MAX_CONTENT_CHARS:
        errors["content"] = [f"At most {settings.MEMORY_MAX_CONTENT_CHARS} characters."]
    memory_type = raw.get("memory_type")
    if memory_type not in MemoryType.values:
        errors["memory_type"] = [f"One of {', '.join(MemoryType.values)}."]
    confidence = raw.get("confidence", 0.8)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        errors["confidence"] = ["A number from 0 to 1."]
    importance = raw.get("importance", 5)
    if isinstance(importance, bool) or not isinstance(importance, int) or not 1 <= importance <= 10:
        errors["importance"] = ["A whole number from 1 to 10."]
    tags = raw.get("tags") or []
    if (
        not isinstance(tags, list)
        or len(tags) > MAX_TAGS
        or not all(isinstance(t, str) and 0 < len(t) <= 60 for t in tags)
    ):
        errors["tags"] = [f"At most {MAX_TAGS} strings of 1 to 60 characters."]
    subject_type, subject_id = str(raw.get("subject_type") or ""), str(raw.get("subject_id") or "")
    if len(subject_type) > 60 or len(subject_id) > 200:
        errors["subject"] = ["subject_type has at most 60 characters, subject_id at most 200."]
    elif bool(subject_type) != bool(subject_id):
        errors["subject"] = ["Give both subject_type and subject_id, or neither."]
    expires_at = raw.get("expires_at")
    if expires_at is not None and (not isinstance(expires_at, datetime) or expires_at <= timezone.now()):
        errors["expires_at"] = ["A time in the future."]
    source_trust = raw.get("source_trust") or SourceTrust.TRUSTED
    if source_trust not in SourceTrust.values:
        errors["source_trust"] = [f"One of {', '.join(SourceTrust.values)}."]
    if errors:
        raise InvalidInput("The memory is invalid.", validation_errors=errors)
    return MemoryInput(
        content=str(content).strip(),
        memory_type=str(memory_type),
        confidence=float(confidence),
        importance=int(importance),
        subject_type=subject_type,
        subject_id=subject_id,
        tags=sorted(set(tags)),
        expires_at=expires_at,
        source_trust=str(source_trust),
    )


@dataclass
class StoreResult:
    memory: Memory
    created: bool  # False: merged into an existing near-duplicate
    similarity: float | None = None


def _lock_agent_memories(organization_id: Any, agent_id: Any) -> None:
    """Serialize stores per agent and organization for the rest of the transaction, so two
    concurrent stores of one new fact cannot both miss each other and add two rows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"memory:{organization_id}:{agent_id}"])


def _nearest_duplicate(
    *,
    organization_id: Any,
    agent_id: Any,
    vector: Any,
    model: str,
    subject: Subject | None,
    exclude: Sequence[Any] = (),
) -> MemoryHit | None:
    hits = memory_search(
        organization_id=organization_id,
        agent_id=agent_id,
        vector=vector,
        model=model,
        k=1,
        subject=subject,
        shared_only=subject is None,
        exclude_ids=exclude,
    )
    if hits and hits[0].similarity > settings.MEMORY_DEDUPE_SIMILARITY:
        return hits[0]
    return None


def _reinforce(memory_id: Any, item: MemoryInput) -> None:
    """One UPDATE: confidence combined as independent evidence (1 - (1-a)(1-b), capped),
    importance the higher of the two, tags merged.

    Trust is never raised by a merge: an untrusted item changes nothing of a trusted memory,
    and merges lift an untrusted memory no higher than UNTRUSTED_MAX_CONFIDENCE (or the value
    a person gave it)."""
    untrusted_row = Q(source_trust=SourceTrust.UNTRUSTED)
    trusted_item = item.source_trust != SourceTrust.UNTRUSTED
    evidence: Any = Value(item.confidence)
    importance: Any = Greatest(F("importance"), Value(item.importance))
    if not trusted_item:
        evidence = Case(When(untrusted_row, then=evidence), default=Value(0.0))
        importance = Case(When(untrusted_row, then=importance), default=F("importance"))
    cap = Case(
        When(untrusted_row, then=Greatest(Value(UNTRUSTED_MAX_CONFIDENCE), F("confidence"))),
        default=Value(MAX_MERGED_CONFIDENCE),
    )
    Memory.objects.filter(pk=memory_id).update(
        confidence=Least(cap, Value(1.0) - (Value(1.0) - F("confidence")) * (Value(1.0) - evidence)),
        importance=importance,
        updated_at=timezone.now(),
    )
    if item.tags:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE memory_memory SET tags = ARRAY(SELECT DISTINCT unnest(tags || %s::varchar[]) ORDER BY 1)"
                " WHERE id = %s AND (%s OR source_trust = %s)",
                [item.tags, memory_id, trusted_item, SourceTrust.UNTRUSTED.value],
            )


def _subject(item: MemoryInput) -> Subject | None:
    return Subject(item.subject_type, item.subject_id) if item.subject_id else None


@dataclass
class Embedded:
    """Vectors made ahead of the transaction that stores them (None: embed later)."""

    vectors: list[Any]
    model: str
    batch: EmbeddingBatch | None = None


def memories_embed(*, items: Sequence[MemoryInput], embedder: Embedder, allow_pending: bool = False) -> Embedded:
    """Embed the items' contents; call outside transactions (a provider call may be slow).

    With ``allow_pending``, an unavailable embedder gives no vectors (the rows are stored
    without one for the ``memory.embed_pending`` task) instead of raising."""
    try:
        batch = embedder.embed([item.content for item in items])
    except EmbedderUnavailable:
        if not allow_pending:
            raise
        logger.warning("embedder %s unavailable; storing %d memories for later embedding", embedder.name, len(items))
        return Embedded(vectors=[None] * len(items), model=embedder.name)
    return Embedded(vectors=list(batch.vectors), model=embedder.name, batch=batch)


def memories_store(
    *,
    organization: Any,
    agent: Any,
    items: Sequence[MemoryInput],
    source: str = MemorySource.API,
    execution: Any = None,
    actor: Actor | None = None,
    embedder: Embedder | None = None,
    embedded: Embedded | None = None,
    allow_pending: bool = False,
) -> list[StoreResult]:
    """Store memories, merging near-duplicates (cosine similarity > MEMORY_DEDUPE_SIMILARITY
    within the same subject) into the existing memory instead of adding a row.

    Vectors come from ``embedded`` (made by the caller before its transaction), else they are
    made here first, before this function's transaction.
    """
    if not items:
        return []
    if embedded is None:
        embedder = embedder or get_embedder(organization_id=organization.pk)
        embedded = memories_embed(items=items, embedder=embedder, allow_pending=allow_pending)
    vectors, batch = embedded.vectors, embedded.batch
    results: list[StoreResult] = []
    owner = execution or UsageOwner(
        organization=organization, agent_id=agent.pk, triggered_by_user_id=getattr(actor, "user_id", None)
    )
    with transaction.atomic():
        _lock_agent_memories(organization.pk, agent.pk)
        for item, vector in zip(items, vectors, strict=True):
            duplicate = None
            if vector is not None:
                duplicate = _nearest_duplicate(
                    organization_id=organization.pk,
                    agent_id=agent.pk,
                    vector=vector,
                    model=embedded.model,
                    subject=_subject(item),
                )
            if duplicate is not None:
                _reinforce(duplicate.memory.pk, item)
                duplicate.memory.refresh_from_db()
                results.append(StoreResult(duplicate.memory, False, duplicate.similarity))
                continue
            memory = Memory.objects.create(
                organization=organization,
                agent=agent,
                memory_type=item.memory_type,
                content=item.content,
                confidence=item.confidence,
                importance=item.importance,
                subject_type=item.subject_type,
                subject_id=item.subject_id,
                tags=item.tags,
                expires_at=item.expires_at,
                source=source,
                source_execution_id=getattr(execution, "pk", None),
                source_trust=item.source_trust,
                embedding=vector,
                embedding_model=embedded.model if vector is not None else "",
            )
            results.append(StoreResult(memory, True))
        if batch is not None:
            record_embedding_usage(owner=owner, batch=batch)
        if actor is not None:
            activity_record(
                organization=organization,
                actor=actor,
                action="memory.stored",
                agent_id=agent.pk,
                target=results[0].memory if len(results) == 1 else None,
                request_summary={"count": len(items), "source": source},
                response_summary={"created": sum(r.created for r in results)},
            )
    if any(vector is None for vector in vectors):
        enqueue_embed_pending()
    return results


def memory_store(
    *,
    organization: Any,
    agent: Any,
    data: dict[str, Any],
    source: str = MemorySource.API,
    actor: Actor | None = None,
    execution: Any = None,
    embedder: Embedder | None = None,
) -> StoreResult:
    """Validate and store one memory (see ``memories_store``)."""
    item = memory_input_validate(data)
    return memories_store(
        organization=organization,
        agent=agent,
        items=[item],
        source=source,
        actor=actor,
        execution=execution,
        embedder=embedder,
    )[0]


def memory_update(*, memory: Memory, data: dict[str, Any], actor: Actor | None = None) -> Memory:
    """Change what may change without a new vector: importance, confidence, tags, expiry."""
    allowed = {"importance", "confidence", "tags", "expires_at"}
    unknown = set(data) - allowed
    if unknown:
        raise InvalidInput(
            validation_errors={
                name: ["Cannot be changed; forget the memory and add a new one."] for name in sorted(unknown)
            }
        )
    merged = {
        "content": memory.content,
        "memory_type": memory.memory_type,
        "confidence": memory.confidence,
        "importance": memory.importance,
        "tags": list(memory.tags),
        "expires_at": None,
        **data,
    }
    checked = memory_input_validate(merged)
    for name in data:
        setattr(memory, name, getattr(checked, name))
    with transaction.atomic():
        memory.save(update_fields=[*data, "updated_at"])
        if actor is not None:
            activity_record(
                organization=actor.organization,
                actor=actor,
                action="memory.updated",
                agent_id=memory.agent_id,
                target=memory,
                request_summary={"fields": sorted(data)},
            )
    return memory


def memory_delete(*, memory: Memory, actor: Actor | None = None) -> None:
    with transaction.atomic():
        if actor is not None:
            activity_record(
                organization=actor.organization,
                actor=actor,
                action="memory.deleted",
                agent_id=memory.agent_id,
                target=memory,
            )
        memory.delete()


def memory_access_record(*, memory_ids: Sequence[Any]) -> int:
    """Count one access of each memory, in one statement (no read-modify-write)."""
    if not memory_ids:
        return 0
    return Memory.objects.filter(pk__in=list(memory_ids)).update(
        access_count=F("access_count") + 1, last_accessed_at=timezone.now()
    )


def importance_weighted(hits: list[MemoryHit], *, k: int) -> list[MemoryHit]:
    """Re-rank cosine hits so importance (1-10) bends the order a little:
    score = similarity x (1 + MEMORY_IMPORTANCE_WEIGHT x (importance - 5) / 5)."""
    weight = settings.MEMORY_IMPORTANCE_WEIGHT

    def score(hit: MemoryHit) -> float:
        return hit.similarity * (1 + weight * (hit.memory.importance - 5) / 5)

    return sorted(hits, key=score, reverse=True)[:k]


def memory_retrieve(
    *,
    organization_id: Any,
    agent_id: Any,
    vector: Any,
    model: str,
    k: int | None = None,
    memory_types: Sequence[str] | None = None,
    subject: Subject | None = None,
    min_confidence: float | None = None,
) -> list[MemoryHit]:
    """What a run remembers: the top-k by cosine among the agent's unexpired memories of the
    given types (the subject's and the agent-wide ones), re-ranked by importance; counts
    one access of each returned memory."""
    k = k or settings.MEMORY_RETRIEVAL_K
    # Over-fetch so importance can lift a slightly less similar memory into the top k.
    candidates = memory_search(
        organization_id=organization_id,
        agent_id=agent_id,
        vector=vector,
        model=model,
        k=k * 3,
        memory_types=memory_types if memory_types is not None else settings.MEMORY_RETRIEVAL_TYPES,
        subject=subject,
        include_shared=subject is not None,
        shared_only=subject is None,
        min_confidence=settings.MEMORY_RETRIEVAL_MIN_CONFIDENCE if min_confidence is None else min_confidence,
    )
    hits = importance_weighted(candidates, k=k)
    memory_access_record(memory_ids=[hit.memory.pk for hit in hits])
    return hits
