"""agents/{id}/memories/ (list, add, search, read, edit, forget), conversations and episodes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from memory.models import Conversation, Episode, Memory
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def url(agent, suffix=""):
    return f"/api/v1/agents/{agent.pk}/memories/{suffix}"


def add(client, agent, content, memory_type="fact", **fields):
    return client.post(url(agent), {"content": content, "memory_type": memory_type, **fields}, format="json")


def test_add_list_read_forget(client_for, alice, agent, embedder):
    client = client_for(alice)
    created = add(client, agent, "Acme renews its contract every March.", importance=8, tags=["acme"])
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["content"] == "Acme renews its contract every March." and body["importance"] == 8
    assert body["embedding_model"] == embedder.name and "embedding" not in body
    assert body["source"] == "api" and body["agent_id"] == str(agent.pk)

    duplicate = add(client, agent, "Acme renews its contract every March!", confidence=0.5)
    assert duplicate.status_code == 200 and duplicate.json()["id"] == body["id"]
    assert duplicate.json()["confidence"] > body["confidence"]

    listing = client.get(url(agent)).json()
    assert listing["total"] == 1 and listing["results"][0]["id"] == body["id"]
    assert client.get(url(agent, f"{body['id']}/")).json()["id"] == body["id"]

    patched = client.patch(url(agent, f"{body['id']}/"), {"importance": 2, "tags": ["x"]}, format="json")
    assert patched.status_code == 200 and patched.json()["importance"] == 2 and patched.json()["tags"] == ["x"]
    assert_error(client.patch(url(agent, f"{body['id']}/"), {"content": "new"}, format="json"), 400, "InvalidInput")

    assert client.delete(url(agent, f"{body['id']}/")).status_code == 204
    assert not Memory.objects.exists()
    assert_error(client.get(url(agent, f"{body['id']}/")), 404, "NotFound")


def test_list_filters(client_for, alice, agent, store):
    store("Tea for Alice.", "preference", subject_type="user", subject_id="alice", tags=["drinks"])
    store("The office opens at 8.", "fact")
    client = client_for(alice)
    assert client.get(url(agent), {"memory_type": "preference"}).json()["total"] == 1
    assert client.get(url(agent), {"subject": "user:alice"}).json()["total"] == 1
    assert client.get(url(agent), {"subject": "user:bob"}).json()["total"] == 0
    assert client.get(url(agent), {"tag": "drinks"}).json()["total"] == 1
    assert_error(client.get(url(agent), {"subject": "alice"}), 400, "InvalidInput")
    assert_error(client.get(url(agent), {"memory_type": "opinion"}), 400, "InvalidInput")


def test_search_returns_similarity_nearest_first(client_for, vic, agent, store):
    from tests.memory.test_embedders import CORPUS

    for text in CORPUS:
        store(text, "fact", confidence=0.9)
    store("Jane's manager is Mike.", "relationship", subject_type="user", subject_id="7", confidence=0.4)
    client = client_for(vic)  # viewers may read and search
    response = client.get(url(agent, "search/"), {"q": "Who is Jane's boss?", "k": 3})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert len(results) == 3
    assert results[0]["content"] in ("Jane reports to Mike in the sales department.", "Jane's manager is Mike.")
    sims = [r["similarity"] for r in results]
    assert sims == sorted(sims, reverse=True) and 0 < sims[0] <= 1

    only = client.get(url(agent, "search/"), {"q": "Jane", "memory_type": "relationship,preference"}).json()
    assert [r["memory_type"] for r in only["results"]] == ["relationship"]
    subject = client.get(url(agent, "search/"), {"q": "Jane", "subject": "user:7"}).json()
    assert [r["subject"] for r in subject["results"]] == ["user:7"]
    confident = client.get(url(agent, "search/"), {"q": "Jane", "min_confidence": 0.5, "k": 100}).json()
    assert all(r["confidence"] >= 0.5 for r in confident["results"]) and len(confident["results"]) == len(CORPUS)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x", "k": 0}, "k"),
        ({"q": "x", "k": 101}, "k"),
        ({"q": "x", "k": "ten"}, "k"),
        ({"q": "x", "memory_type": "opinion"}, "memory_type"),
        ({"q": "x", "min_confidence": 1.5}, "min_confidence"),
        ({"q": "x", "subject": "nocolon"}, "subject"),
        ({"q": "x" * 2001}, "q"),
    ],
)
def test_search_bad_input(client_for, alice, agent, params, field):
    error = assert_error(client_for(alice).get(url(agent, "search/"), params), 400, "InvalidInput")
    assert field in error["details"]["validation_errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": "", "memory_type": "fact"}, "content"),
        ({"content": "x" * 4001, "memory_type": "fact"}, "content"),
        ({"content": "ok", "memory_type": "opinion"}, "memory_type"),
        ({"content": "ok", "memory_type": "fact", "confidence": 2}, "confidence"),
        ({"content": "ok", "memory_type": "fact", "confidence": -1}, "confidence"),
        ({"content": "ok", "memory_type": "fact", "importance": 0}, "importance"),
        ({"content": "ok", "memory_type": "fact", "subject_id": "42"}, "subject"),
        ({"content": ["not", "text"], "memory_type": "fact"}, "content"),
    ],
)
def test_add_bad_input(client_for, alice, agent, body, field):
    error = assert_error(client_for(alice).post(url(agent), body, format="json"), 400, "InvalidInput")
    assert field in error["details"]["validation_errors"]
    assert not Memory.objects.exists()


def test_embedder_down_is_a_clear_503(client_for, alice, agent, settings, providers_at_fake):
    from bench.fakes.script import error

    settings.MEMORY_EMBEDDER = "openai:text-embedding-3-small"
    providers_at_fake.script_embeddings(*[error(503)] * 6)
    client = client_for(alice)
    failed = assert_error(add(client, agent, "Something to remember."), 503, "ServiceUnavailable")
    assert "embedder is unavailable" in failed["message"]
    assert_error(client.get(url(agent, "search/"), {"q": "x"}), 503, "ServiceUnavailable")
    assert not Memory.objects.exists()


def test_roles_and_scopes(client_for, vic, mia, agent):
    assert_error(add(client_for(vic), agent, "Viewers cannot add."), 403, "InsufficientPermissions")
    assert add(client_for(mia), agent, "Members can.").status_code == 201
    read_only = client_for(mia, scopes=["agents:read"])
    assert read_only.get(url(agent)).status_code == 200
    assert_error(add(read_only, agent, "No write scope."), 403, "AgentAccessDenied")


def test_other_organizations_get_404(client_for, oscar, alice, agent, store, other_org, make_agent):
    memory = store("Acme's secret.").memory
    intruder = client_for(oscar)
    for response in (
        intruder.get(url(agent)),
        intruder.get(url(agent, "search/"), {"q": "secret"}),
        intruder.get(url(agent, f"{memory.pk}/")),
        intruder.delete(url(agent, f"{memory.pk}/")),
        add(intruder, agent, "planted"),
        intruder.get(f"/api/v1/agents/{agent.pk}/conversations/"),
        intruder.get(f"/api/v1/agents/{agent.pk}/episodes/"),
    ):
        assert_error(response, 404, "AgentNotFound")
    assert Memory.objects.count() == 1
    # A memory id of another agent of the same organization is not found under this agent.
    other = make_agent(name="Second")
    assert_error(client_for(alice).get(url(other, f"{memory.pk}/")), 404, "NotFound")
    assert_error(client_for(alice).get(url(agent, "not-a-uuid/")), 404, "NotFound")


def test_list_queries_do_not_grow_with_page_size(client_for, alice, agent, store):
    for index in range(12):
        store(f"Distinct fact number {index} about topic {index * 7}.")
    client = client_for(alice)

    def count(limit):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url(agent), {"limit": limit}).status_code == 200
        return len(queries)

    count(1)  # the first request of a token records its use; later ones do not
    assert count(2) == count(12)


def test_conversations_and_episodes_endpoints(client_for, alice, vic, agent, org):
    conversation = Conversation.objects.create(
        organization=org, agent=agent, messages=[{"role": "user", "content": "hi"}], message_count=1
    )
    Episode.objects.create(organization=org, agent=agent, outcome="success", trigger_event="manual")
    client = client_for(alice)
    listing = client.get(f"/api/v1/agents/{agent.pk}/conversations/").json()
    assert listing["total"] == 1 and "messages" not in listing["results"][0]
    detail = client.get(f"/api/v1/agents/{agent.pk}/conversations/{conversation.pk}/").json()
    assert detail["messages"] == [{"role": "user", "content": "hi"}]
    episodes = client.get(f"/api/v1/agents/{agent.pk}/episodes/").json()
    assert episodes["total"] == 1 and episodes["results"][0]["outcome"] == "success"
    assert_error(
        client_for(vic).delete(f"/api/v1/agents/{agent.pk}/conversations/{conversation.pk}/"),
        403,
        "InsufficientPermissions",
    )
    assert client.delete(f"/api/v1/agents/{agent.pk}/conversations/{conversation.pk}/").status_code == 204
    assert not Conversation.objects.exists()


def test_schema_documents_the_memory_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/agents/{agent_id}/memories/",
        "/api/v1/agents/{agent_id}/memories/search/",
        "/api/v1/agents/{agent_id}/memories/{memory_id}/",
        "/api/v1/knowledge-bases/{id}/documents/",
        "/api/v1/knowledge-bases/{id}/documents/{document_id}/",
        "/api/v1/knowledge-bases/{id}/search/",
    ):
        assert path in paths, path
    search = paths["/api/v1/agents/{agent_id}/memories/search/"]["get"]
    assert {p["name"] for p in search["parameters"]} >= {"q", "k", "memory_type", "subject", "min_confidence"}
