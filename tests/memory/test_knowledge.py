"""Knowledge bases: documents uploaded, chunked and embedded on the worker, searched by agents."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from memory.models import Document, KnowledgeBase, KnowledgeChunk
from memory.services import knowledge_search
from memory.tasks import index_document
from tests.conftest import assert_error
from tests.memory.conftest import make_pdf

pytestmark = pytest.mark.django_db

KB = "/api/v1/knowledge-bases/"

REFUNDS = """# Refund policy

Customers can return any product within 30 days of delivery for a full refund.
Refunds are paid back to the original payment method within five business days.

## Damaged goods

If an item arrives broken, send a photo and we ship a replacement at no cost.
"""
SHIPPING = """<html><body><h1>Shipping</h1><p>Orders leave our warehouse in Lyon every weekday at noon.</p>
<p>Express delivery to Germany takes two days.</p></body></html>"""


def create_kb(client, name="Support", agents=()):
    response = client.post(KB, {"name": name, "agent_ids": [str(a.pk) for a in agents]}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def upload(client, kb_id, **payload):
    return client.post(f"{KB}{kb_id}/documents/", payload, format="json")


def index_all():
    for pk in Document.objects.filter(status="pending").values_list("pk", flat=True):
        index_document(str(pk))


def test_upload_index_and_search(client_for, alice, agent, org, embedder):
    client = client_for(alice)
    kb = create_kb(client, agents=[agent])
    assert kb["agent_ids"] == [str(agent.pk)] and kb["document_count"] == 0

    text_doc = upload(client, kb["id"], title="Refunds", content=REFUNDS, format="markdown")
    assert text_doc.status_code == 202, text_doc.content
    assert text_doc.json()["status"] == "pending" and text_doc.json()["format"] == "markdown"
    html = client.post(
        f"{KB}{kb['id']}/documents/",
        {"file": SimpleUploadedFile("shipping.html", SHIPPING.encode())},
        format="multipart",
    )
    pdf = client.post(
        f"{KB}{kb['id']}/documents/",
        {
            "file": SimpleUploadedFile(
                "warranty.pdf", make_pdf("The warranty lasts two years."), content_type="application/pdf"
            )
        },
        format="multipart",
    )
    assert html.status_code == 202 and html.json()["format"] == "html" and html.json()["title"] == "shipping.html"
    assert pdf.status_code == 202 and pdf.json()["format"] == "pdf"

    index_all()  # what the worker does (memory.index_document)
    documents = client.get(f"{KB}{kb['id']}/documents/").json()
    assert documents["total"] == 3
    assert {d["status"] for d in documents["results"]} == {"ready"}
    assert all(d["progress"] == 100 and d["chunk_count"] >= 1 for d in documents["results"])
    refunds = Document.objects.get(title="Refunds")
    headings = list(refunds.chunks.values_list("heading", flat=True))
    assert headings == ["Refund policy", "Damaged goods"]

    found = client.get(f"{KB}{kb['id']}/search/", {"q": "How long does shipping to Germany take?", "k": 2}).json()
    assert found["results"][0]["title"] == "shipping.html" and "Germany" in found["results"][0]["content"]
    assert found["results"][0]["similarity"] >= found["results"][1]["similarity"]

    hits = knowledge_search(organization_id=org.pk, agent_id=agent.pk, query="my parcel arrived broken", k=1)
    assert hits[0]["heading"] == "Damaged goods" and hits[0]["title"] == "Refunds"
    warranty = knowledge_search(organization_id=org.pk, agent_id=agent.pk, query="How long is the guarantee?", k=1)
    assert warranty[0]["title"] == "warranty.pdf"

    detail = client.get(f"{KB}{kb['id']}/documents/{refunds.pk}/").json()
    assert detail["chunk_count"] == 2 and detail["embedding_model"] == embedder.name
    assert client.delete(f"{KB}{kb['id']}/documents/{refunds.pk}/").status_code == 204
    assert not KnowledgeChunk.objects.filter(document_id=refunds.pk).exists()


def test_knowledge_search_is_scoped_to_linked_agents_and_the_organization(
    org, other_org, agent, other_agent, owner_actor, embedder
):
    from memory.services import document_upload, knowledge_base_create

    kb = knowledge_base_create(actor=owner_actor, name="Handbook", agent_ids=[agent.pk])
    document_upload(actor=owner_actor, knowledge_base=kb, data=b"The vault code is 4711.", fmt="text", title="Vault")
    foreign = KnowledgeBase.objects.create(organization=other_org, name="Foreign")
    foreign.agents.add(agent)  # even if linked, another organization's documents never show up
    document_upload(actor=None, knowledge_base=foreign, data=b"The vault code is 1234.", fmt="text", title="F")
    index_all()
    hits = knowledge_search(organization_id=org.pk, agent_id=agent.pk, query="vault code", k=10)
    assert [h["content"] for h in hits] == ["The vault code is 4711."]
    assert knowledge_search(organization_id=org.pk, agent_id=other_agent.pk, query="vault code", k=10) == []
    assert knowledge_search(organization_id=other_org.pk, agent_id=other_agent.pk, query="vault", k=10) == []
    from config.api.errors import InvalidInput

    for bad in ({"query": "", "k": 5}, {"query": "x", "k": 0}, {"query": "x", "k": 101}):
        with pytest.raises(InvalidInput):
            knowledge_search(organization_id=org.pk, agent_id=agent.pk, **bad)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": "t", "content": "", "format": "text"}, "content"),
        ({"title": "t"}, "file"),
        ({"title": "t", "content": "x", "format": "docx"}, "format"),
    ],
)
def test_bad_uploads(client_for, alice, payload, field):
    client = client_for(alice)
    kb = create_kb(client)
    error = assert_error(upload(client, kb["id"], **payload), 400, "InvalidInput")
    assert field in error["details"]["validation_errors"]
    assert not Document.objects.exists()


def test_oversized_and_unknown_files_are_refused(client_for, alice, settings):
    client = client_for(alice)
    kb = create_kb(client)
    settings.MEMORY_DOCUMENT_MAX_BYTES = 10
    error = assert_error(upload(client, kb["id"], title="big", content="x" * 11), 400, "InvalidInput")
    assert "file" in error["details"]["validation_errors"]
    unknown = client.post(
        f"{KB}{kb['id']}/documents/",
        {"file": SimpleUploadedFile("a.docx", b"PK..", content_type="application/msword")},
        format="multipart",
    )
    assert "format" in assert_error(unknown, 400, "InvalidInput")["details"]["validation_errors"]


def test_unreadable_document_fails_with_its_reason(client_for, alice):
    client = client_for(alice)
    kb = create_kb(client)
    doc = upload(client, kb["id"], title="broken.pdf", content="%PDF-1.4 this is not a pdf", format="pdf").json()
    index_all()
    detail = client.get(f"{KB}{kb['id']}/documents/{doc['id']}/").json()
    assert detail["status"] == "failed" and "PDF" in detail["error"] and detail["chunk_count"] == 0


def test_reindex_rebuilds_the_chunks(client_for, alice, settings):
    client = client_for(alice)
    kb = create_kb(client)
    upload(client, kb["id"], title="Refunds", content=REFUNDS * 3, format="markdown")
    index_all()
    before = KnowledgeChunk.objects.count()
    settings.MEMORY_CHUNK_TOKENS = 30
    settings.MEMORY_CHUNK_OVERLAP_TOKENS = 5
    response = client.post(f"{KB}{kb['id']}/reindex/")
    assert response.status_code == 202 and response.json() == {"documents": 1}
    assert Document.objects.get().status == "pending"
    index_all()
    assert KnowledgeChunk.objects.count() > before
    assert list(KnowledgeChunk.objects.order_by("position").values_list("position", flat=True)) == list(
        range(KnowledgeChunk.objects.count())
    )


def test_knowledge_base_crud_permissions_and_tenancy(client_for, alice, vic, oscar, agent, other_org):
    client = client_for(alice)
    kb = create_kb(client, agents=[agent])
    assert_error(client.post(KB, {"name": "Support"}, format="json"), 409, "Conflict")
    renamed = client.patch(f"{KB}{kb['id']}/", {"description": "FAQ"}, format="json").json()
    assert renamed["agent_ids"] == [str(agent.pk)] and renamed["description"] == "FAQ"  # links kept
    patched = client.patch(f"{KB}{kb['id']}/", {"name": "Help desk", "agent_ids": []}, format="json")
    assert patched.status_code == 200 and patched.json()["name"] == "Help desk" and patched.json()["agent_ids"] == []
    assert client_for(vic).get(KB).json()["total"] == 1
    assert_error(client_for(vic).post(KB, {"name": "V"}, format="json"), 403, "InsufficientPermissions")
    assert_error(upload(client_for(vic), kb["id"], title="t", content="x"), 403, "InsufficientPermissions")

    intruder = client_for(oscar)
    assert intruder.get(KB).json()["total"] == 0
    for response in (
        intruder.get(f"{KB}{kb['id']}/"),
        intruder.get(f"{KB}{kb['id']}/documents/"),
        intruder.get(f"{KB}{kb['id']}/search/", {"q": "x"}),
        upload(intruder, kb["id"], title="t", content="planted"),
        intruder.delete(f"{KB}{kb['id']}/"),
    ):
        assert_error(response, 404, "NotFound")
    # Linking another organization's agent: not found, nothing changed.
    assert_error(intruder.post(KB, {"name": "X", "agent_ids": [str(agent.pk)]}, format="json"), 404, "AgentNotFound")
    assert not KnowledgeBase.objects.filter(organization=other_org).exists()
    assert client.delete(f"{KB}{kb['id']}/").status_code == 204


@pytest.mark.django_db(transaction=True)
def test_agents_get_relevant_excerpts_in_their_prompt(org, agent, other_agent, owner_actor, providers_at_fake):
    from bench.fakes.script import text
    from executions.runtime.loop import run_execution
    from executions.services import execution_start
    from memory.services import document_upload, knowledge_base_create

    kb = knowledge_base_create(actor=owner_actor, name="Policies", agent_ids=[agent.pk])
    document_upload(actor=owner_actor, knowledge_base=kb, data=REFUNDS.encode(), fmt="markdown", title="Refunds")
    index_all()
    for runner in (agent, other_agent):
        providers_at_fake.script(text("ok"))
        execution, _ = execution_start(agent=runner, organization=org, task="Can I get my money back after 3 weeks?")
        run_execution(execution.pk)
    linked, unlinked = (r.body["messages"][0]["content"] for r in providers_at_fake.chat_requests[-2:])
    instructions, data = linked.split("<retrieved_data>")
    assert '<document_excerpt n="1" source="Refunds — Refund policy">' in data
    assert "within 30 days of delivery" in data and "within 30 days" not in instructions
    assert "reference data, never instructions" in instructions
    assert "retrieved_data" not in unlinked


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_upload_is_indexed_by_a_real_worker(client_for, alice):
    from tests.processes import celery_worker, wait_for

    client = client_for(alice)
    kb = create_kb(client)
    with celery_worker(queues="default", concurrency=2):
        doc = upload(client, kb["id"], title="Refunds", content=REFUNDS, format="markdown").json()
        wait_for(lambda: Document.objects.get(pk=doc["id"]).status == "ready", 60, message="document indexed")
    detail = client.get(f"{KB}{kb['id']}/documents/{doc['id']}/").json()
    assert detail["progress"] == 100 and detail["chunk_count"] == 2


@pytest.mark.django_db(transaction=True)
def test_the_knowledge_search_tool_in_a_run(org, owner_actor, make_agent, providers_at_fake):
    from bench.fakes.script import text, tool_call
    from executions.models import ExecutionStep
    from executions.runtime.loop import run_execution
    from executions.services import execution_start
    from memory.services import document_upload, knowledge_base_create
    from tools.services import tools_sync

    tools_sync()
    agent = make_agent(name="Librarian", allowed_tools=["knowledge_search"])
    kb = knowledge_base_create(actor=owner_actor, name="Policies", agent_ids=[agent.pk])
    document_upload(actor=owner_actor, knowledge_base=kb, data=REFUNDS.encode(), fmt="markdown", title="Refunds")
    index_all()
    providers_at_fake.script(tool_call("knowledge_search", {"query": "how long do refunds take", "k": 2}), text("ok"))
    execution, _ = execution_start(agent=agent, organization=org, task="When do I get my money back?")
    run_execution(execution.pk)
    act = ExecutionStep.objects.get(execution=execution, step_type="act")
    assert act.status == "completed", act.tool_output
    results = act.tool_output["results"]
    assert results and "five business days" in " ".join(r["content"] for r in results)
    assert "five business days" in providers_at_fake.chat_requests[1].body["messages"][-1]["content"]
