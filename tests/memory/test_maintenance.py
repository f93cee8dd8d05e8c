"""Consolidation, pruning, expiry, pending embeddings, re-embedding, and their commands."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from memory.models import Conversation, KnowledgeBase, KnowledgeChunk, Memory
from memory.services import memory_consolidate, memory_embed_pending, memory_maintain, memory_prune
from memory.tasks import expire_conversations, maintain

pytestmark = pytest.mark.django_db


def filler(org, agent, embedder, count, **fields):
    """``count`` unrelated memories (random unit vectors: no two are near-duplicates)."""
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(count, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    Memory.objects.bulk_create(
        Memory(
            organization=org,
            agent=agent,
            memory_type="fact",
            content=f"filler {i}",
            embedding=vectors[i],
            embedding_model=embedder.name,
            **fields,
        )
        for i in range(count)
    )


def test_consolidation_merges_clusters_of_near_duplicates(org, agent, store, embedder):
    filler(org, agent, embedder, 100)
    keep = store("The customer wants invoices by email.", "preference", importance=4, tags=["a"]).memory
    # Stored apart (as concurrent runs would, before the merge rule caught them).
    near = [
        Memory.objects.create(
            organization=org,
            agent=agent,
            memory_type="preference",
            content=text,
            embedding=embedder.embed_one(text),
            embedding_model=embedder.name,
            importance=imp,
            confidence=conf,
            access_count=3,
            tags=tags,
            last_accessed_at=timezone.now(),
        )
        for text, imp, conf, tags in (
            ("The customer wants invoices by email!", 9, 0.5, ["b"]),
            ("The customer wants invoices by e-mail.", 2, 0.95, []),
        )
    ]
    other_subject = Memory.objects.create(
        organization=org,
        agent=agent,
        memory_type="preference",
        content="The customer wants invoices by email.",
        subject_type="user",
        subject_id="9",
        embedding=embedder.embed_one("The customer wants invoices by email."),
        embedding_model=embedder.name,
    )
    before = Memory.objects.count()

    dry = memory_consolidate(organization_id=org.pk, agent_id=agent.pk, dry_run=True)
    assert (dry.clusters, dry.removed) == (1, 2) and Memory.objects.count() == before

    result = memory_consolidate(organization_id=org.pk, agent_id=agent.pk)
    assert (result.clusters, result.removed) == (1, 2)
    assert Memory.objects.count() == before - 2
    survivor = Memory.objects.get(pk=near[0].pk)  # the most important one is kept
    assert not Memory.objects.filter(pk__in=[keep.pk, near[1].pk]).exists()
    assert (survivor.importance, survivor.confidence, survivor.access_count) == (9, 0.95, 6)
    assert survivor.tags == ["a", "b"]
    assert Memory.objects.filter(pk=other_subject.pk).exists()  # another subject is never merged in


def test_no_consolidation_or_pruning_below_100_memories(org, agent, store, embedder):
    filler(org, agent, embedder, 90, importance=1)
    Memory.objects.update(created_at=timezone.now() - timedelta(days=90))
    store("The customer wants invoices by email.")
    text = "The customer wants invoices by e-mail."  # cosine 0.98: merged at 100+ memories
    Memory.objects.create(
        organization=org,
        agent=agent,
        memory_type="fact",
        content=text,
        embedding=embedder.embed_one(text),
        embedding_model=embedder.name,
    )
    assert memory_consolidate(organization_id=org.pk, agent_id=agent.pk).clusters == 0
    assert memory_prune(organization_id=org.pk, agent_id=agent.pk) == 0
    assert Memory.objects.count() == 92


def test_pruning_rules(org, agent, other_agent, embedder):
    old = timezone.now() - timedelta(days=31)
    filler(org, agent, embedder, 100, importance=5)
    cases = {
        "drop": {"importance": 2, "access_count": 1, "created_at": old},
        "important": {"importance": 3, "access_count": 0, "created_at": old},
        "used": {"importance": 1, "access_count": 2, "created_at": old},
        "recent": {"importance": 1, "access_count": 0, "created_at": timezone.now() - timedelta(days=29)},
    }
    for name, fields in cases.items():
        Memory.objects.create(organization=org, agent=agent, memory_type="fact", content=name, **fields)
    # Another agent with few memories keeps even its stale ones.
    Memory.objects.create(organization=org, agent=other_agent, memory_type="fact", content="small", **cases["drop"])

    assert memory_prune(organization_id=org.pk, agent_id=agent.pk, dry_run=True) == 1
    assert memory_prune(organization_id=org.pk, agent_id=agent.pk) == 1
    assert set(Memory.objects.exclude(content__startswith="filler").values_list("content", flat=True)) == {
        "important",
        "used",
        "recent",
        "small",
    }


def test_maintenance_deletes_expired_memories_and_reports_progress(org, agent, embedder):
    filler(org, agent, embedder, 100)
    Memory.objects.create(
        organization=org,
        agent=agent,
        memory_type="fact",
        content="gone",
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    lines: list[str] = []
    result = memory_maintain(progress=lines.append)
    assert result.expired == 1 and result.agents == 1 and not Memory.objects.filter(content="gone").exists()
    assert any(f"agent {agent.pk}" in line and "100 memories" in line for line in lines)
    assert maintain()["agents"] == 1  # the beat task runs the same service


def test_commands_print_progress_and_honour_dry_run(org, agent, embedder):
    filler(org, agent, embedder, 100, importance=1, created_at=timezone.now() - timedelta(days=40))
    out = StringIO()
    call_command("prune_memories", "--dry-run", stdout=out)
    assert "would delete 100 pruned" in out.getvalue() and f"agent {agent.pk}" in out.getvalue()
    assert Memory.objects.count() == 100
    out = StringIO()
    call_command("consolidate_memories", "--agent", str(agent.pk), "--dry-run", stdout=out)
    assert "would merge 0 cluster(s)" in out.getvalue()
    out = StringIO()
    call_command("prune_memories", "--organization", org.slug, stdout=out)
    assert "deleted 100 pruned" in out.getvalue() and not Memory.objects.exists()


def test_expire_conversations_job_and_command(org, agent):
    now = timezone.now()
    Conversation.objects.create(organization=org, agent=agent, expires_at=now - timedelta(seconds=1))
    kept = Conversation.objects.create(organization=org, agent=agent, expires_at=now + timedelta(hours=1))
    out = StringIO()
    call_command("expire_conversations", "--dry-run", stdout=out)
    assert "would delete 1" in out.getvalue() and Conversation.objects.count() == 2
    assert expire_conversations() == 1
    assert list(Conversation.objects.values_list("pk", flat=True)) == [kept.pk]


def test_pending_memories_are_embedded_and_merged(org, agent, store, embedder):
    existing = store("The customer wants invoices by email.", confidence=0.5).memory
    pending = [
        Memory.objects.create(organization=org, agent=agent, memory_type="fact", content=text, confidence=0.5)
        for text in ("The customer wants invoices by e-mail.", "The warehouse is in Lyon.")
    ]
    assert memory_embed_pending(embedder=embedder) == {"embedded": 1, "merged": 1}
    assert not Memory.objects.filter(pk=pending[0].pk).exists()
    existing.refresh_from_db()
    assert existing.confidence == pytest.approx(0.75)
    lyon = Memory.objects.get(pk=pending[1].pk)
    assert lyon.embedding_model == embedder.name and len(lyon.embedding) == 384


def test_reembed_command_is_batched_and_resumable(org, agent, store, providers_at_fake):
    for index in range(7):
        store(f"Memory number {index} about a different subject {'abcdefg'[index]}.")
    kb = KnowledgeBase.objects.create(organization=org, name="KB")
    from memory.models import Document

    doc = Document.objects.create(organization=org, knowledge_base=kb, title="d", format="text", raw=b"x", sha256="0")
    KnowledgeChunk.objects.create(organization=org, knowledge_base=kb, document=doc, position=0, content="chunk")
    target = "openai/text-embedding-3-small@384"

    out = StringIO()
    call_command(
        "reembed_memories",
        "--embedder",
        "openai:text-embedding-3-small",
        "--batch-size",
        "2",
        "--limit",
        "4",
        "--no-knowledge",
        stdout=out,
    )
    assert Memory.objects.filter(embedding_model=target).count() == 4
    assert "memories: 2/7" in out.getvalue() and "memories: 4/7" in out.getvalue()

    out = StringIO()
    call_command("reembed_memories", "--embedder", "openai:text-embedding-3-small", "--batch-size", "2", stdout=out)
    assert "memories: 3 to re-embed" in out.getvalue() and "memories: 3/3 (100.0%)" in out.getvalue()
    assert Memory.objects.exclude(embedding_model=target).count() == 0
    assert KnowledgeChunk.objects.get().embedding_model == target
    # Billed as embedding usage of the organization.
    from billing.models import UsageRecord

    assert UsageRecord.objects.filter(purpose="embedding", organization=org, model="text-embedding-3-small").exists()
    requests = providers_at_fake.requests_to("/embeddings")
    assert all(r.body["dimensions"] == 384 for r in requests) and max(len(r.body["input"]) for r in requests) == 2
