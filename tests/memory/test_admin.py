"""The memory admin: organization scoping, semantic search, saving without a model call."""

from __future__ import annotations

import pytest
from django.test import Client

from memory.models import Memory
from memory.services import memory_embed_pending
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/memory/memory/"


@pytest.fixture
def staff_adam(adam):
    adam.is_staff = True
    adam.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(adam)
    return client


def test_organization_admin_sees_only_its_memories(staff_adam, store, other_org):
    store("Acme's own memory about shipping.")
    store("Globex's memory about shipping.", organization=other_org)
    page = staff_adam.get(CHANGELIST).content.decode()
    assert "Acme&#x27;s own memory" in page and "Globex" not in page


def test_plain_and_semantic_search(staff_adam, store):
    from tests.memory.test_embedders import CORPUS

    for text in CORPUS:
        store(text)
    plain = staff_adam.get(CHANGELIST, {"q": "Whiskers"}).content.decode()
    assert "Whiskers" in plain and "Berlin" not in plain
    semantic = staff_adam.get(CHANGELIST, {"q": "~ who signs off on large bills"})
    assert semantic.status_code == 200
    rows = semantic.context["cl"].result_list
    assert rows[0].content == "Invoices over 10,000 euros need the CFO's approval."
    assert len(rows) == len(CORPUS)


def test_adding_in_the_admin_embeds_after_commit(staff_adam, org, agent, embedder, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_adam.post(
            "/admin/memory/memory/add/",
            {
                "organization": org.pk,
                "agent": agent.pk,
                "memory_type": "fact",
                "content": "Added by an operator.",
                "subject_type": "",
                "subject_id": "",
                "confidence": "0.9",
                "importance": "5",
                "tags": "",
                "expires_at_0": "",
                "expires_at_1": "",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    memory = Memory.objects.get()
    assert memory.source == "admin" and memory.embedding is None and memory.embedding_model == ""
    assert len(callbacks) == 1  # memory.embed_pending queued after the save commits
    memory_embed_pending(embedder=embedder)  # what that task does
    memory.refresh_from_db()
    assert memory.embedding_model == embedder.name


def test_superuser_sees_all(store, other_org):
    store("One.")
    store("Two.", organization=other_org)
    root = UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    assert client.get(CHANGELIST).context["cl"].result_count == 2
    for path in (
        "/admin/memory/conversation/",
        "/admin/memory/episode/",
        "/admin/memory/knowledgebase/",
        "/admin/memory/document/",
        "/admin/memory/knowledgechunk/",
    ):
        assert client.get(path).status_code == 200, path


def test_a_memory_cannot_point_at_another_organizations_agent(staff_adam, org, other_org, owner_actor):
    from agents.services.agents import agent_create

    foreign = agent_create(actor=None, data={"name": "Foreign"}, organization=other_org)
    response = staff_adam.post(
        "/admin/memory/memory/add/",
        {
            "organization": org.pk,
            "agent": foreign.pk,
            "memory_type": "fact",
            "content": "x",
            "confidence": "0.5",
            "importance": "5",
            "tags": "",
            "subject_type": "",
            "subject_id": "",
        },
    )
    # Not even offered: an organization admin's agent choices are their organizations' own.
    assert response.status_code == 200 and "agent" in response.context["adminform"].form.errors
    assert not Memory.objects.exists()


def test_trust_is_shown_and_only_the_platform_vouches_for_a_memory(staff_adam, org, agent, store):
    """An organization admin adds memories as the API does (and may mark one untrusted);
    turning an untrusted memory into a trusted one is the platform's call."""
    base = {
        "organization": org.pk, "agent": agent.pk, "memory_type": "fact", "subject_type": "", "subject_id": "",
        "confidence": "0.4", "importance": "5", "tags": "", "expires_at_0": "", "expires_at_1": "",
    }  # fmt: skip
    response = staff_adam.post(
        "/admin/memory/memory/add/", {**base, "content": "Pasted from a forum.", "source_trust": "untrusted"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    pasted = Memory.objects.get(content="Pasted from a forum.")
    assert pasted.source_trust == "untrusted"
    page = staff_adam.get(CHANGELIST, {"source_trust__exact": "untrusted"})
    assert [m.pk for m in page.context["cl"].result_list] == [pasted.pk]
    change = staff_adam.get(f"{CHANGELIST}{pasted.pk}/change/")
    assert "source_trust" not in change.context["adminform"].form.fields  # read-only for the organization
    staff_adam.post(f"{CHANGELIST}{pasted.pk}/change/", {**base, "content": pasted.content, "source_trust": "trusted"})
    pasted.refresh_from_db()
    assert pasted.source_trust == "untrusted"
    root = UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    response = client.post(
        f"{CHANGELIST}{pasted.pk}/change/", {**base, "content": pasted.content, "source_trust": "trusted"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    pasted.refresh_from_db()
    assert pasted.source_trust == "trusted"
