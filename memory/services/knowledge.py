"""Knowledge bases: an organization's documents, chunked and embedded, searched for the agents
linked to them (in the system prompt, and through ``knowledge_search`` as a tool).

Uploads store the document and queue ``memory.index_document`` after commit; the worker
extracts the text, chunks it, embeds the chunks in batches (``Document.progress`` moves with
each batch) and swaps the document's chunks in one transaction, so a search never sees half
of a re-indexed document.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.access import Actor
from accounts.services import activity_record
from billing.quotas import plan_feature_require
from config.api.errors import ApiError, InvalidInput
from memory.chunking import ExtractionError, chunk_text, extract_text
from memory.embedders import Embedder, EmbedderUnavailable, get_embedder
from memory.models import Document, DocumentFormat, DocumentStatus, KnowledgeBase, KnowledgeChunk
from memory.selectors import agent_knowledge_base_ids, chunk_search, memory_agent_get
from memory.services.common import UsageOwner, record_embedding_usage
from memory.tasks import enqueue_index_document

logger = logging.getLogger(__name__)

EMBED_BATCH = 64
MAX_QUERY_CHARS = 2000


def _agents_for(*, actor: Actor, agent_ids: Sequence[Any]) -> list[Any]:
    return [memory_agent_get(actor=actor, agent_id=agent_id) for agent_id in dict.fromkeys(agent_ids)]


def knowledge_base_create(
    *, actor: Actor, name: str, description: str = "", agent_ids: Sequence[Any] = ()
) -> KnowledgeBase:
    plan_feature_require(organization=actor.organization, feature="knowledge_bases", user=actor.user)
    agents = _agents_for(actor=actor, agent_ids=agent_ids)
    try:
        with transaction.atomic():
            knowledge_base = KnowledgeBase.objects.create(
                organization=actor.organization, name=name.strip(), description=description, created_by_id=actor.user_id
            )
            knowledge_base.agents.set(agents)
            activity_record(
                organization=actor.organization, actor=actor, action="knowledge_base.created", target=knowledge_base
            )
    except IntegrityError:
        raise ApiError(code="Conflict", message=f"A knowledge base named {name!r} already exists.") from None
    return knowledge_base


def knowledge_base_update(*, actor: Actor, knowledge_base: KnowledgeBase, data: dict[str, Any]) -> KnowledgeBase:
    agents = _agents_for(actor=actor, agent_ids=data["agent_ids"]) if "agent_ids" in data else None
    try:
        with transaction.atomic():
            fields = [name for name in ("name", "description") if name in data]
            for name in fields:
                setattr(knowledge_base, name, data[name].strip() if name == "name" else data[name])
            if fields:
                knowledge_base.save(update_fields=[*fields, "updated_at"])
            if agents is not None:
                knowledge_base.agents.set(agents)
            activity_record(
                organization=actor.organization,
                actor=actor,
                action="knowledge_base.updated",
                target=knowledge_base,
                request_summary={"fields": sorted(data)},
            )
    except IntegrityError:
        raise ApiError(
            code="Conflict", message=f"A knowledge base named {data.get('name')!r} already exists."
        ) from None
    return knowledge_base


def knowledge_base_delete(*, actor: Actor, knowledge_base: KnowledgeBase) -> None:
    with transaction.atomic():
        activity_record(
            organization=actor.organization, actor=actor, action="knowledge_base.deleted", target=knowledge_base
        )
        knowledge_base.delete()


def document_upload(
    *,
    actor: Actor | None,
    knowledge_base: KnowledgeBase,
    data: bytes,
    fmt: str,
    title: str = "",
    filename: str = "",
) -> Document:
    """Store an upload and queue its indexing; refuses empty, oversized or unknown formats."""
    errors: dict[str, list[str]] = {}
    if fmt not in DocumentFormat.values:
        errors["format"] = [f"One of {', '.join(DocumentFormat.values)} (or a file name that says which)."]
    if not data:
        errors["file"] = ["The document is empty."]
    elif len(data) > settings.MEMORY_DOCUMENT_MAX_BYTES:
        errors["file"] = [f"At most {settings.MEMORY_DOCUMENT_MAX_BYTES} bytes."]
    title = (title or filename or "").strip()[:300]
    if not title:
        errors["title"] = ["A title (or a file name) is required."]
    if errors:
        raise InvalidInput("The document cannot be added.", validation_errors=errors)
    with transaction.atomic():
        document = Document.objects.create(
            organization_id=knowledge_base.organization_id,
            knowledge_base=knowledge_base,
            title=title,
            filename=filename[:300],
            format=fmt,
            raw=data,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            created_by_id=getattr(actor, "user_id", None),
        )
        if actor is not None:
            activity_record(
                organization=actor.organization,
                actor=actor,
                action="document.uploaded",
                target=document,
                request_summary={"knowledge_base": str(knowledge_base.pk), "bytes": len(data), "format": fmt},
            )

        enqueue_index_document(document.pk)
    return document


def document_delete(*, actor: Actor, document: Document) -> None:
    with transaction.atomic():
        activity_record(organization=actor.organization, actor=actor, action="document.deleted", target=document)
        document.delete()


def knowledge_base_reindex(*, actor: Actor | None, knowledge_base: KnowledgeBase) -> int:
    """Queue every document of the knowledge base for extraction, chunking and embedding again."""
    with transaction.atomic():
        ids = list(knowledge_base.documents.values_list("pk", flat=True))
        Document.objects.filter(pk__in=ids).update(status=DocumentStatus.PENDING, progress=0, error="")
        if actor is not None:
            activity_record(
                organization=actor.organization,
                actor=actor,
                action="knowledge_base.reindex",
                target=knowledge_base,
                request_summary={"documents": len(ids)},
            )

        for pk in ids:
            enqueue_index_document(pk)
    return len(ids)


def document_index(
    *, document_id: Any, embedder: Embedder | None = None, on_progress: Callable[[int], None] | None = None
) -> Document | None:
    """Extract, chunk, embed and store one document's chunks (the worker's job).

    Returns None when the document is gone. Extraction problems mark it failed; an
    unavailable embedder raises EmbedderUnavailable (the task retries) after putting the
    document back to pending with the reason.
    """
    document = Document.objects.select_related("organization").filter(pk=document_id).first()
    if document is None:
        return None
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.PROCESSING, progress=0, error="")
    try:
        text = extract_text(bytes(document.raw), document.format)
    except ExtractionError as exc:
        Document.objects.filter(pk=document.pk).update(status=DocumentStatus.FAILED, error=str(exc)[:2000])
        document.refresh_from_db()
        return document
    chunks = chunk_text(
        text, max_tokens=settings.MEMORY_CHUNK_TOKENS, overlap_tokens=settings.MEMORY_CHUNK_OVERLAP_TOKENS
    )
    try:
        embedder = embedder or get_embedder(organization_id=document.organization_id)
        vectors: list[Any] = []
        owner = UsageOwner(organization=document.organization)
        for start in range(0, len(chunks), EMBED_BATCH):
            part = chunks[start : start + EMBED_BATCH]
            batch = embedder.embed([f"{c.heading}\n{c.content}" if c.heading else c.content for c in part])
            vectors.extend(batch.vectors)
            record_embedding_usage(owner=owner, batch=batch)
            # 5-95 %: extraction took the first step, storing takes the last.
            percent = 5 + int(90 * len(vectors) / max(1, len(chunks)))
            Document.objects.filter(pk=document.pk).update(progress=percent)
            if on_progress:
                on_progress(percent)
    except EmbedderUnavailable as exc:
        Document.objects.filter(pk=document.pk).update(status=DocumentStatus.PENDING, error=str(exc)[:2000])
        raise
    with transaction.atomic():
        locked = Document.objects.select_for_update().filter(pk=document.pk).first()
        if locked is None:
            return None  # deleted while we worked
        KnowledgeChunk.objects.filter(document=locked).delete()
        KnowledgeChunk.objects.bulk_create(
            [
                KnowledgeChunk(
                    organization_id=locked.organization_id,
                    knowledge_base_id=locked.knowledge_base_id,
                    document=locked,
                    position=chunk.position,
                    heading=chunk.heading,
                    content=chunk.content,
                    token_count=chunk.token_count,
                    embedding=vector,
                    embedding_model=embedder.name,
                )
                for chunk, vector in zip(chunks, vectors, strict=True)
            ],
            batch_size=500,
        )
        locked.text = text
        locked.status = DocumentStatus.READY
        locked.progress = 100
        locked.error = ""
        locked.chunk_count = len(chunks)
        locked.embedding_model = embedder.name
        locked.indexed_at = timezone.now()
        locked.save(
            update_fields=["text", "status", "progress", "error", "chunk_count", "embedding_model", "indexed_at"]
        )
    if on_progress:
        on_progress(100)
    return locked


def _hit_dict(hit: Any) -> dict[str, Any]:
    chunk = hit.chunk
    return {
        "document_id": str(chunk.document_id),
        "knowledge_base_id": str(chunk.knowledge_base_id),
        "title": hit.document_title,
        "heading": chunk.heading,
        "position": chunk.position,
        "content": chunk.content,
        "similarity": round(hit.similarity, 6),
    }


def knowledge_search(
    *, organization_id: Any, agent_id: Any, query: str, k: int = 5, embedder: Embedder | None = None
) -> list[dict[str, Any]]:
    """The chunks most relevant to ``query`` from the organization's knowledge bases linked to
    the agent: [{document_id, knowledge_base_id, title, heading, position, content, similarity}].

    The service behind the ``knowledge_search`` tool. Raises InvalidInput on a bad query or k,
    EmbedderUnavailable when no vector can be made.
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput(validation_errors={"query": ["A non-empty string is required."]})
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100:
        raise InvalidInput(validation_errors={"k": ["A whole number from 1 to 100."]})
    kb_ids = agent_knowledge_base_ids(organization_id=organization_id, agent_id=agent_id)
    if not kb_ids:
        return []
    embedder = embedder or get_embedder(organization_id=organization_id)
    vector = embedder.embed_one(query.strip()[:MAX_QUERY_CHARS])
    hits = chunk_search(
        organization_id=organization_id, knowledge_base_ids=kb_ids, vector=vector, model=embedder.name, k=k
    )
    return [_hit_dict(hit) for hit in hits]


def knowledge_base_search(
    *, knowledge_base: KnowledgeBase, query: str, k: int = 5, embedder: Embedder | None = None
) -> list[dict[str, Any]]:
    """Search one knowledge base (the API's search endpoint)."""
    embedder = embedder or get_embedder(organization_id=knowledge_base.organization_id)
    vector = embedder.embed_one(query.strip()[:MAX_QUERY_CHARS])
    hits = chunk_search(
        organization_id=knowledge_base.organization_id,
        knowledge_base_ids=[knowledge_base.pk],
        vector=vector,
        model=embedder.name,
        k=k,
    )
    return [_hit_dict(hit) for hit in hits]
