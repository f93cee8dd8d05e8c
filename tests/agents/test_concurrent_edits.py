"""Concurrent edits of one agent: the draft's ETag and If-Match (security issue #14, Low).
Without If-Match the last write wins, as before."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from agents.models import Agent
from tests.agents.conftest import body
from tests.conftest import assert_error


def _create(client) -> tuple[str, str]:
    response = client.post("/api/v1/agents/", body(), format="json")
    assert response.status_code == 201, response.content
    return f"/api/v1/agents/{response.json()['id']}/", response["ETag"]


@pytest.mark.django_db
def test_a_stale_if_match_is_refused_and_changes_nothing(alice, client_for):
    client = client_for(alice)
    url, _ = _create(client)
    etag = client.get(url)["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")

    first = client.patch(url, {"description": "Mine."}, format="json", HTTP_IF_MATCH=etag)
    assert first.status_code == 200, first.content
    assert first["ETag"] != etag and client.get(url)["ETag"] == first["ETag"]

    error = assert_error(
        client.patch(url, {"description": "Theirs, from the old read."}, format="json", HTTP_IF_MATCH=etag),
        412,
        "PreconditionFailed",
    )
    assert error["details"] == {"if_match": etag, "etag": first["ETag"]}
    assert Agent.objects.get().description == "Mine."


@pytest.mark.django_db
def test_without_if_match_the_last_write_wins_and_star_or_a_list_matches(alice, client_for):
    client = client_for(alice)
    url, _ = _create(client)
    assert client.patch(url, {"description": "One."}, format="json").status_code == 200
    assert client.patch(url, {"description": "Two."}, format="json").status_code == 200
    assert client.patch(url, {"description": "Three."}, format="json", HTTP_IF_MATCH="*").status_code == 200
    current = client.get(url)["ETag"]
    listed = client.patch(url, {"description": "Four."}, format="json", HTTP_IF_MATCH=f'"nope", {current}')
    assert listed.status_code == 200
    weak = client.patch(url, {"description": "Five."}, format="json", HTTP_IF_MATCH=f"W/{listed['ETag']}")
    assert_error(weak, 412, "PreconditionFailed")  # If-Match compares strongly
    assert Agent.objects.get().description == "Four."


@pytest.mark.django_db
def test_the_etag_follows_the_draft_not_the_runs(alice, client_for, owner_actor):
    from agents.services.versions import agent_publish

    client = client_for(alice)
    url, etag = _create(client)
    Agent.objects.update(total_runs=5, last_run_status="completed")  # a run finishing is not an edit
    assert client.get(url)["ETag"] == etag
    agent_publish(actor=owner_actor, agent=Agent.objects.get())
    assert client.get(url)["ETag"] != etag  # a lifecycle move is


@pytest.mark.django_db(transaction=True)
def test_two_edits_from_one_read_one_wins_one_gets_412(alice, client_for):
    client = client_for(alice)
    url, etag = _create(client)
    barrier, results = threading.Barrier(2), {}

    def edit(text: str) -> None:
        try:
            barrier.wait()
            results[text] = client.patch(url, {"description": text}, format="json", HTTP_IF_MATCH=etag).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(text,)) for text in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [200, 412]
    winner = next(text for text, code in results.items() if code == 200)
    assert Agent.objects.get().description == winner


@pytest.mark.django_db
def test_the_schema_documents_if_match_the_etag_and_412(client):
    schema = client.get("/api/schema/?format=json").json()
    item = schema["paths"]["/api/v1/agents/{id}/"]
    patch_headers = {p["name"]: p for p in item["patch"]["parameters"] if p["in"] == "header"}
    assert "If-Match" in patch_headers and not patch_headers["If-Match"].get("required", False)
    assert "412" in item["patch"]["responses"]
    assert "ETag" in item["get"]["responses"]["200"]["headers"]
    execute = schema["paths"]["/api/v1/agents/{agent_id}/execute/"]["post"]
    assert "422" in execute["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in execute["parameters"])
