"""Storing, de-duplicating and searching memories with the real local model on real pgvector."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.api.errors import InvalidInput
from memory.models import Memory
from memory.selectors import Subject, memory_search
from memory.services import memory_access_record, memory_retrieve, memory_store
from tests.memory.test_embedders import CORPUS, QUERIES

pytestmark = pytest.mark.django_db


def search(agent, org, embedder, query, **kw):
    return memory_search(
        organization_id=org.pk, agent_id=agent.pk, vector=embedder.embed_one(query), model=embedder.name, **kw
    )


def test_store_embeds_with_the_configured_model(store, embedder):
    result = store("John prefers email over phone calls.", "preference", importance=7, tags=["contact"])
    assert result.created
    memory = Memory.objects.get(pk=result.memory.pk)
    assert memory.embedding_model == embedder.name
    assert len(memory.embedding) == 384
    assert (memory.memory_type, memory.importance, memory.tags, memory.source) == ("preference", 7, ["contact"], "api")


def test_semantic_neighbours_rank_first(store, agent, org, embedder):
    for text in CORPUS:
        store(text)
    for query, expected in QUERIES.items():
        hits = search(agent, org, embedder, query, k=3)
        assert hits[0].memory.content == CORPUS[expected], (query, [h.memory.content for h in hits])
        assert hits[0].similarity > hits[1].similarity
        assert -1 <= hits[-1].similarity <= 1


def test_near_duplicate_raises_confidence_instead_of_adding(store):
    first = store("The customer prefers email over phone.", "preference", confidence=0.6, importance=4, tags=["a"])
    again = store("The customer prefers email over phone!", "preference", confidence=0.5, importance=6, tags=["b"])
    assert not again.created and again.memory.pk == first.memory.pk
    assert again.similarity > 0.95
    assert Memory.objects.count() == 1
    merged = Memory.objects.get()
    assert merged.confidence == pytest.approx(1 - 0.4 * 0.5)  # independent evidence: 0.8
    assert merged.importance == 6 and merged.tags == ["a", "b"]
    # Something related but different is a new memory.
    assert store("The customer prefers phone calls in the morning.", "preference").created


def test_dedupe_stays_within_the_subject(store):
    store("Prefers email.", "preference", subject_type="user", subject_id="1")
    other = store("Prefers email.", "preference", subject_type="user", subject_id="2")
    shared = store("Prefers email.", "preference")
    assert other.created and shared.created
    assert Memory.objects.count() == 3


def test_search_filters(store, agent, org, embedder):
    store("Acme pays invoices late.", "pattern", confidence=0.9)
    store("Acme's invoices go to the finance team.", "fact", confidence=0.3)
    store("Acme's old invoicing address.", "fact", expires_at=timezone.now() + timedelta(seconds=1))
    Memory.objects.filter(content__startswith="Acme's old").update(expires_at=timezone.now() - timedelta(days=1))
    hits = search(agent, org, embedder, "Acme invoices", k=10)
    assert {h.memory.content for h in hits} == {"Acme pays invoices late.", "Acme's invoices go to the finance team."}
    assert [h.memory.memory_type for h in search(agent, org, embedder, "invoices", memory_types=["pattern"])] == [
        "pattern"
    ]
    confident = search(agent, org, embedder, "invoices", min_confidence=0.5)
    assert [h.memory.confidence for h in confident] == [0.9]


def test_only_vectors_of_the_same_model_are_compared(store, agent, org, embedder):
    memory = store("Vectors from another model.").memory
    Memory.objects.filter(pk=memory.pk).update(embedding_model="openai/text-embedding-3-small@384")
    assert search(agent, org, embedder, "Vectors from another model.") == []


def test_isolation_between_agents_organizations_and_subjects(
    store, agent, other_agent, org, other_org, embedder, make_agent
):
    store("Alice likes tea.", subject_type="user", subject_id="alice")
    store("Bob likes coffee.", subject_type="user", subject_id="bob")
    store("The office has a kitchen.")
    store("Other agent's secret.", agent=other_agent)
    store("Other organization's secret.", organization=other_org)  # a row of this agent in another tenant

    def contents(**kw):
        return {h.memory.content for h in search(agent, org, embedder, "what do people drink", k=10, **kw)}

    everything = {"Alice likes tea.", "Bob likes coffee.", "The office has a kitchen."}
    assert contents() == everything
    assert contents(subject=Subject("user", "alice")) == {"Alice likes tea."}
    assert contents(subject=Subject("user", "alice"), include_shared=True) == {
        "Alice likes tea.",
        "The office has a kitchen.",
    }
    assert contents(shared_only=True) == {"The office has a kitchen."}
    # What a run for Bob retrieves: his and the shared ones, never Alice's.
    bob = memory_retrieve(
        organization_id=org.pk,
        agent_id=agent.pk,
        vector=embedder.embed_one("drinks"),
        model=embedder.name,
        memory_types=["fact"],
        subject=Subject("user", "bob"),
    )
    assert {h.memory.content for h in bob} == {"Bob likes coffee.", "The office has a kitchen."}


def test_exact_and_hnsw_paths_agree(store, agent, org, embedder, settings):
    for text in CORPUS:
        store(text)
    settings.MEMORY_EXACT_SEARCH_MAX_ROWS = 1000
    exact = [h.memory.pk for h in search(agent, org, embedder, "Who approves invoices?", k=4)]
    settings.MEMORY_EXACT_SEARCH_MAX_ROWS = 2  # the agent now counts as large: HNSW with iterative scan
    from django.core.cache import cache

    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        approximate = [h.memory.pk for h in search(agent, org, embedder, "Who approves invoices?", k=4)]
    assert approximate == exact
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "hnsw.iterative_scan" in sql and "OFFSET 0" not in sql


def test_exact_path_does_not_use_the_hnsw_index(agent, org, embedder):
    from memory.selectors import memory_search_sql, vector_text

    sql = memory_search_sql(exact=True)
    params = {
        "q": vector_text(embedder.embed_one("x")),
        "agent": agent.pk,
        "org": org.pk,
        "model": embedder.name,
        "now": timezone.now(),
        "k": 10,
    }
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "memory_embedding_hnsw" not in plan and "Sort" in plan  # a top-k sort, not an index order


def test_retrieval_weights_importance_and_counts_access_in_one_statement(store, agent, org, embedder):
    # By cosine alone the first is nearer (0.71 vs 0.65); importance 1 vs 10 reverses that.
    low = store("The customer prefers to be contacted by email.", "preference", importance=1).memory
    high = store("The customer likes email.", "preference", importance=10).memory
    vector = embedder.embed_one("How does the customer like to be contacted?")
    plain = search(agent, org, embedder, "How does the customer like to be contacted?")
    assert [h.memory.pk for h in plain] == [low.pk, high.pk]
    with CaptureQueriesContext(connection) as queries:
        hits = memory_retrieve(organization_id=org.pk, agent_id=agent.pk, vector=vector, model=embedder.name)
    assert [h.memory.pk for h in hits] == [high.pk, low.pk]
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1 and "access_count" in updates[0]
    low.refresh_from_db()
    assert low.access_count == 1 and low.last_accessed_at is not None
    assert memory_access_record(memory_ids=[]) == 0


def test_retrieval_defaults_to_fact_preference_and_outcome(store, agent, org, embedder, settings):
    for kind in ("fact", "preference", "pattern", "relationship", "outcome"):
        store(f"A {kind} about deliveries and shipping schedules number {kind}.", kind)
    hits = memory_retrieve(
        organization_id=org.pk, agent_id=agent.pk, vector=embedder.embed_one("deliveries"), model=embedder.name
    )
    assert {h.memory.memory_type for h in hits} == {"fact", "preference", "outcome"}
    assert settings.MEMORY_RETRIEVAL_K == 10


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"content": ""}, "content"),
        ({"content": "   "}, "content"),
        ({"content": "x" * 4001}, "content"),
        ({"memory_type": "opinion"}, "memory_type"),
        ({"confidence": 1.5}, "confidence"),
        ({"confidence": -0.1}, "confidence"),
        ({"importance": 0}, "importance"),
        ({"importance": 11}, "importance"),
        ({"subject_type": "user"}, "subject"),
        ({"tags": ["x" * 61]}, "tags"),
        ({"expires_at": timezone.now() - timedelta(days=1)}, "expires_at"),
    ],
)
def test_bad_memories_are_refused(org, agent, embedder, fields, error_field):
    data = {"content": "ok", "memory_type": "fact", **fields}
    with pytest.raises(InvalidInput) as caught:
        memory_store(organization=org, agent=agent, data=data, embedder=embedder)
    assert error_field in caught.value.details["validation_errors"]
    assert Memory.objects.count() == 0
