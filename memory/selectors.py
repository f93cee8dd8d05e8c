"""Reads for memory: scoped lists, and the vector search plan.

Search plan (DESIGN.md §8, measured by ``bench/memory_search.py``): an HNSW scan filtered to
one agent is slower than an exact scan of that agent's rows while the agent holds few rows,
and misses neighbours, yet the planner still picks HNSW. So while an agent holds at most
MEMORY_EXACT_SEARCH_MAX_ROWS vectors of the model, the search orders by a distance no index
can serve, and PostgreSQL reads the agent's rows through the B-tree on
``(agent, organization, embedding_model)``; above that, the HNSW index is used with
``hnsw.iterative_scan`` so a filter that drops candidates does not leave the result short.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from agents.selectors import agent_get, platform_agent_get
from config.api.errors import ApiError
from config.api.ids import one_or_not_found
from memory.models import Conversation, Document, Episode, KnowledgeBase, KnowledgeChunk, Memory

if TYPE_CHECKING:
    from accounts.access import Actor
    from agents.models import Agent

# Cache of "does this agent hold many vectors of this model": a count bounded by the
# threshold costs an index-only scan of up to that many entries; once a minute is enough.
PLAN_CACHE_SECONDS = 60


@dataclass(frozen=True)
class Subject:
    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"


def subject_id_value(raw: Any) -> str:
    """A subject id as stored: ids longer than the column are hashed, never cut, so two long
    ids never collapse into one (that would mix two people's memories)."""
    value = str(raw).strip()
    if len(value) > 200:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def parse_subject(raw: str) -> Subject:
    """``type:id`` (``user:42``) → Subject; ValueError when malformed."""
    kind, sep, ident = raw.partition(":")
    kind, ident = kind.strip(), ident.strip()
    if not sep or not kind or not ident or len(kind) > 60:
        raise ValueError("Expected type:id, for example user:42.")
    return Subject(kind, subject_id_value(ident))


# -- agents, memories, conversations, episodes ---------------------------------------------


def memory_agent_get(*, actor: Actor, agent_id: Any) -> Agent:
    """The agent whose memory ``actor`` may see: one of its organization's agents it can see,
    or a platform agent (whose memories in this organization belong to this organization)."""
    try:
        return agent_get(actor=actor, agent_id=agent_id)
    except ApiError as error:
        if error.code != "AgentNotFound":
            raise
        return platform_agent_get(agent_id=agent_id)


def memory_list(*, organization_id: Any, agent_id: Any) -> QuerySet[Memory]:
    return Memory.objects.filter(organization_id=organization_id, agent_id=agent_id).defer("embedding")


def memory_get(*, organization_id: Any, agent_id: Any, memory_id: Any) -> Memory:
    return one_or_not_found(
        memory_list(organization_id=organization_id, agent_id=agent_id),
        memory_id,
        "Memory not found.",
        details={"memory_id": str(memory_id)},
    )


def conversation_list(*, organization_id: Any, agent_id: Any) -> QuerySet[Conversation]:
    return Conversation.objects.filter(organization_id=organization_id, agent_id=agent_id)


def conversation_get(*, organization_id: Any, agent_id: Any, conversation_id: Any) -> Conversation:
    return one_or_not_found(
        conversation_list(organization_id=organization_id, agent_id=agent_id),
        conversation_id,
        "Conversation not found.",
        details={"conversation_id": str(conversation_id)},
    )


def episode_list(*, organization_id: Any, agent_id: Any) -> QuerySet[Episode]:
    return Episode.objects.filter(organization_id=organization_id, agent_id=agent_id)


# -- vector search ---------------------------------------------------------------------------


def vector_text(vector: Any) -> str:
    """pgvector's text form of a vector, for SQL parameters."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


MEMORY_COLUMNS = (
    "id, organization_id, agent_id, memory_type, subject_type, subject_id, content, embedding_model, "
    "confidence, importance, source, source_execution_id, source_trust, tags, access_count, last_accessed_at, "
    "expires_at, created_at, updated_at"
)


def memory_search_sql(
    *, exact: bool, table: str = "memory_memory", columns: str = MEMORY_COLUMNS, filters: str = ""
) -> str:
    """The search statement (shared with the benchmark, so it measures what runs).

    Parameters: q (vector text), agent, org, model, now, k; ``filters`` adds ``AND ...``.
    Exact path: the distance is computed once per row in a subquery that ``OFFSET 0`` keeps
    the planner from flattening, so no index can serve the ORDER BY and PostgreSQL reads the
    agent's rows through the B-tree and keeps the top k (a bounded heap sort).
    """
    where = (
        " WHERE agent_id = %(agent)s AND organization_id = %(org)s AND embedding_model = %(model)s"
        " AND embedding IS NOT NULL AND (expires_at IS NULL OR expires_at > %(now)s)"
        f"{filters}"
    )
    inner = f"SELECT {columns}, (embedding <=> %(q)s::vector) AS distance FROM {table}{where}"  # noqa: S608
    if exact:
        return f"SELECT * FROM ({inner} OFFSET 0) AS candidates ORDER BY distance LIMIT %(k)s"  # noqa: S608
    return f"{inner} ORDER BY embedding <=> %(q)s::vector LIMIT %(k)s"


def hnsw_session_settings(cursor: Any) -> None:
    """Inside a transaction: HNSW search settings for this transaction only."""
    cursor.execute(
        "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true),"
        " set_config('hnsw.max_scan_tuples', %s, true)",
        [str(settings.MEMORY_HNSW_EF_SEARCH), str(settings.MEMORY_HNSW_MAX_SCAN_TUPLES)],
    )


def agent_vectors_exceed(*, organization_id: Any, agent_id: Any, model: str, threshold: int) -> bool:
    """Whether the agent holds more than ``threshold`` vectors of ``model`` (cached a minute)."""
    key = f"memory:plan:{organization_id}:{agent_id}:{model}:{threshold}"
    try:
        cached = cache.get(key)
    except Exception:  # the cache is an optimisation; Redis down must not stop a search
        cached = None
    if cached is not None:
        return bool(cached)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM memory_memory WHERE agent_id = %s AND organization_id = %s"
            " AND embedding_model = %s LIMIT %s) AS capped",
            [agent_id, organization_id, model, threshold + 1],
        )
        large = cursor.fetchone()[0] > threshold
    with contextlib.suppress(Exception):
        cache.set(key, int(large), PLAN_CACHE_SECONDS)
    return large


@dataclass
class MemoryHit:
    memory: Memory
    similarity: float


def memory_search(
    *,
    organization_id: Any,
    agent_id: Any,
    vector: Any,
    model: str,
    k: int = 10,
    memory_types: Sequence[str] | None = None,
    subject: Subject | None = None,
    shared_only: bool = False,
    include_shared: bool = False,
    min_confidence: float = 0.0,
    exclude_ids: Sequence[Any] = (),
) -> list[MemoryHit]:
    """The ``k`` memories of the agent nearest to ``vector`` among those of ``model``.

    Subjects: ``subject`` alone: only that subject's memories; with ``include_shared``: that
    subject's plus the agent-wide ones (what a run for that subject may see); ``shared_only``:
    only agent-wide ones (a run without a subject); neither: all of them (operators).
    """
    params: dict[str, Any] = {
        "q": vector_text(vector),
        "agent": agent_id,
        "org": organization_id,
        "model": model,
        "now": timezone.now(),
        "k": k,
    }
    filters = ""
    if memory_types:
        filters += " AND memory_type = ANY(%(types)s)"
        params["types"] = list(memory_types)
    if min_confidence > 0:
        filters += " AND confidence >= %(min_confidence)s"
        params["min_confidence"] = min_confidence
    if subject is not None:
        own = "(subject_type = %(subject_type)s AND subject_id = %(subject_id)s)"
        filters += f" AND ({own} OR subject_id = '')" if include_shared else f" AND {own}"
        params["subject_type"], params["subject_id"] = subject.type, subject.id
    elif shared_only:
        filters += " AND subject_id = ''"
    if exclude_ids:
        filters += " AND NOT (id = ANY(%(exclude)s))"
        params["exclude"] = list(exclude_ids)
    exact = not agent_vectors_exceed(
        organization_id=organization_id, agent_id=agent_id, model=model, threshold=settings.MEMORY_EXACT_SEARCH_MAX_ROWS
    )
    sql = memory_search_sql(exact=exact, filters=filters)
    if exact:
        rows = list(Memory.objects.raw(sql, params))
    else:
        with transaction.atomic():  # the hnsw.* settings last until the end of the transaction
            with connection.cursor() as cursor:
                hnsw_session_settings(cursor)
            rows = list(Memory.objects.raw(sql, params))
    # relaxed_order may return neighbours slightly out of order: sort them here.
    rows.sort(key=lambda m: m.distance)  # type: ignore[attr-defined]
    return [MemoryHit(memory=m, similarity=1.0 - float(m.distance)) for m in rows]  # type: ignore[attr-defined]


# -- knowledge bases -------------------------------------------------------------------------


def knowledge_base_list(*, organization_id: Any) -> QuerySet[KnowledgeBase]:
    return KnowledgeBase.objects.filter(organization_id=organization_id)


def knowledge_base_get(*, organization_id: Any, knowledge_base_id: Any) -> KnowledgeBase:
    return one_or_not_found(
        knowledge_base_list(organization_id=organization_id),
        knowledge_base_id,
        "Knowledge base not found.",
        details={"knowledge_base_id": str(knowledge_base_id)},
    )


def document_list(*, knowledge_base: KnowledgeBase) -> QuerySet[Document]:
    return Document.objects.filter(knowledge_base=knowledge_base).defer("raw", "text")


def document_get(*, knowledge_base: KnowledgeBase, document_id: Any) -> Document:
    return one_or_not_found(
        document_list(knowledge_base=knowledge_base),
        document_id,
        "Document not found.",
        details={"document_id": str(document_id)},
    )


def agent_knowledge_base_ids(*, organization_id: Any, agent_id: Any) -> list[Any]:
    """The organization's knowledge bases linked to the agent (never another organization's)."""
    return list(
        KnowledgeBase.objects.filter(organization_id=organization_id, agents__id=agent_id).values_list("pk", flat=True)
    )


@dataclass
class ChunkHit:
    chunk: KnowledgeChunk
    similarity: float
    document_title: str


def chunk_search(
    *, organization_id: Any, knowledge_base_ids: Sequence[Any], vector: Any, model: str, k: int
) -> list[ChunkHit]:
    """The ``k`` chunks of these knowledge bases nearest to ``vector`` (exact below the
    threshold, HNSW with iterative scan above, as for memories)."""
    if not knowledge_base_ids:
        return []
    ids = list(knowledge_base_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM memory_knowledgechunk WHERE knowledge_base_id = ANY(%s)"
            " AND embedding_model = %s LIMIT %s) AS capped",
            [ids, model, settings.MEMORY_EXACT_SEARCH_MAX_ROWS + 1],
        )
        exact = cursor.fetchone()[0] <= settings.MEMORY_EXACT_SEARCH_MAX_ROWS
    # "+ 0": an ORDER BY expression no index serves (the exact path; see memory_search_sql).
    order = "(c.embedding <=> %(q)s::vector) + 0" if exact else "c.embedding <=> %(q)s::vector"
    # ``order`` is one of two fixed strings; every value is a parameter.
    sql = (
        "SELECT c.id, c.organization_id, c.knowledge_base_id, c.document_id, c.position, c.heading, c.content,"  # noqa: S608
        " c.token_count, c.embedding_model, c.created_at, d.title AS document_title,"
        " (c.embedding <=> %(q)s::vector) AS distance"
        " FROM memory_knowledgechunk c JOIN memory_document d ON d.id = c.document_id"
        " WHERE c.organization_id = %(org)s AND c.knowledge_base_id = ANY(%(kbs)s)"
        " AND c.embedding_model = %(model)s AND c.embedding IS NOT NULL"
        f" ORDER BY {order} LIMIT %(k)s"
    )
    params = {"q": vector_text(vector), "org": organization_id, "kbs": ids, "model": model, "k": k}
    if exact:
        rows = list(KnowledgeChunk.objects.raw(sql, params))
    else:
        with transaction.atomic():
            with connection.cursor() as cursor:
                hnsw_session_settings(cursor)
            rows = list(KnowledgeChunk.objects.raw(sql, params))
    rows.sort(key=lambda c: c.distance)  # type: ignore[attr-defined]
    return [
        ChunkHit(chunk=c, similarity=1.0 - float(c.distance), document_title=c.document_title)  # type: ignore[attr-defined]
        for c in rows
    ]


def memory_agents_for_maintenance(
    *, minimum: int, agent_id: Any = None, organization_id: Any = None
) -> list[dict[str, Any]]:
    """(agent_id, organization_id, count) of the agents holding at least ``minimum`` memories."""
    qs = Memory.objects.all()
    if agent_id:
        qs = qs.filter(agent_id=agent_id)
    if organization_id:
        qs = qs.filter(organization_id=organization_id)
    rows = (
        qs.values("agent_id", "organization_id")
        .annotate(count=Count("id"))
        .filter(count__gte=minimum)
        .order_by("organization_id", "agent_id")
    )
    return [dict(row) for row in rows]


def expired_q(now: Any = None) -> Q:
    return Q(expires_at__isnull=False, expires_at__lte=now or timezone.now())
