"""The executions API: execute, read, steps, logs, cancel, stream — with roles and tenancy."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from django.db import connection

from bench.fakes.script import text, tool_call
from executions.models import Execution
from executions.runtime.loop import run_execution
from tests.conftest import assert_error
from tests.fakes.schema_canary import SCHEMA_SECRET
from tests.processes import asgi_server, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_execute_returns_202_and_the_run_is_queued(org, alice, make_agent, client_for):
    agent = make_agent()
    api = client_for(alice)
    response = api.post(f"/api/v1/agents/{agent.id}/execute/", {"task": "Hello", "context": {"a": 1}}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending" and body["agent_id"] == str(agent.id) and body["agent_version"] == "1.0.0"
    assert body["input"] == {"task": "Hello", "context": {"a": 1}}
    assert body["triggered_by"]["user_id"] == alice.id and body["triggered_by"]["type"] == "manual"
    assert Execution.objects.get(pk=body["id"]).triggered_by_token_id is not None


def test_execute_with_wait_returns_200_when_finished(org, alice, make_agent, client_for, providers_at_fake):
    from tests.processes import celery_worker

    agent = make_agent()
    providers_at_fake.script(text("finished quickly"))
    env = {"OPENAI_BASE_URL": providers_at_fake.openai_base_url, "OPENAI_API_KEY": "sk-fake"}
    with celery_worker(queues="io", concurrency=2, extra_env=env):
        response = client_for(alice).post(
            f"/api/v1/agents/{agent.id}/execute/", {"task": "Go", "wait": 20}, format="json"
        )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "completed"
    assert response.json()["output"] == {"text": "finished quickly"}


def test_idempotency_key_header(org, alice, make_agent, client_for):
    agent = make_agent()
    api = client_for(alice)
    url = f"/api/v1/agents/{agent.id}/execute/"
    first = api.post(url, {"task": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    second = api.post(url, {"task": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    assert first.json()["id"] == second.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert Execution.objects.count() == 1


def test_bad_execute_input(org, alice, make_agent, client_for):
    agent = make_agent(input_schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    api = client_for(alice)
    url = f"/api/v1/agents/{agent.id}/execute/"
    assert_error(api.post(url, {}, format="json"), 400, "InvalidInput")
    assert_error(api.post(url, {"task": ""}, format="json"), 400, "InvalidInput")
    assert_error(api.post(url, {"task": "x", "context": []}, format="json"), 400, "InvalidInput")
    assert_error(api.post(url, {"task": "x", "bogus": 1}, format="json"), 400, "InvalidInput")
    error = assert_error(api.post(url, {"task": "x", "context": {"n": "one"}}, format="json"), 400, "InvalidInput")
    assert "context" in error["details"]["validation_errors"]
    assert_error(api.post("/api/v1/agents/not-a-uuid/execute/", {"task": "x"}, format="json"), 404, "AgentNotFound")
    assert Execution.objects.count() == 0


def test_roles_scopes_and_tenancy(org, alice, vic, mia, oscar, make_agent, client_for):
    agent = make_agent()
    url = f"/api/v1/agents/{agent.id}/execute/"
    # A viewer may read but not run; a token without agents:execute may not run.
    assert_error(client_for(vic).post(url, {"task": "x"}, format="json"), 403, "InsufficientPermissions")
    read_only = client_for(alice, scopes=["agents:read"])
    assert_error(read_only.post(url, {"task": "x"}, format="json"), 403, "AgentAccessDenied")
    # Another organization's admin does not even learn the agent exists.
    assert_error(client_for(oscar).post(url, {"task": "x"}, format="json"), 404, "AgentNotFound")
    run = client_for(mia).post(url, {"task": "x"}, format="json").json()
    assert_error(client_for(oscar).get(f"/api/v1/executions/{run['id']}/"), 404, "NotFound")
    assert client_for(oscar).get("/api/v1/executions/").json()["total"] == 0
    assert client_for(vic).get(f"/api/v1/executions/{run['id']}/").status_code == 200
    assert_error(client_for(vic).post(f"/api/v1/executions/{run['id']}/cancel/"), 403, "InsufficientPermissions")
    assert_error(client_for(oscar).post(f"/api/v1/executions/{run['id']}/cancel/"), 404, "NotFound")


def test_read_steps_logs_filters_and_cancel(org, alice, make_agent, client_for, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"])
    api = client_for(alice)
    providers_at_fake.script(tool_call("echo", {"text": "hi"}), text("done"))
    done = api.post(f"/api/v1/agents/{agent.id}/execute/", {"task": "a"}, format="json").json()
    run_execution(done["id"])
    pending = api.post(f"/api/v1/agents/{agent.id}/execute/", {"task": "b"}, format="json").json()

    detail = api.get(f"/api/v1/executions/{done['id']}/").json()
    assert detail["status"] == "completed" and detail["tool_calls"] == 1 and detail["llm_calls"] == 2
    assert detail["duration_ms"] is not None and detail["cost"] != "0.000000"
    steps = api.get(f"/api/v1/executions/{done['id']}/steps/").json()
    assert [s["step_type"] for s in steps["results"]] == ["observe", "think", "act", "think"]
    assert steps["results"][2]["tool_name"] == "echo" and steps["results"][2]["tool_output"] == {"echo": "hi"}
    assert api.get(f"/api/v1/executions/{done['id']}/logs/").status_code == 200

    assert api.get("/api/v1/executions/?status=completed").json()["total"] == 1
    assert api.get(f"/api/v1/executions/?agent={agent.id}").json()["total"] == 2
    assert api.get(f"/api/v1/agents/{agent.id}/executions/?status=pending").json()["total"] == 1
    assert api.get("/api/v1/executions/?from=2999-01-01T00:00:00Z").json()["total"] == 0
    assert_error(api.get("/api/v1/executions/?status=exploded"), 400, "InvalidInput")

    cancelled = api.post(f"/api/v1/executions/{pending['id']}/cancel/")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert_error(api.post(f"/api/v1/executions/{pending['id']}/cancel/"), 409, "Conflict")


def test_list_queries_do_not_grow_with_page_size(org, alice, make_agent, client_for, django_assert_max_num_queries):
    from executions.services import execution_start

    agent = make_agent(limits={"max_runs_per_hour": 500, "max_runs_per_day": 500})
    for i in range(30):
        execution_start(agent=agent, organization=org, task=f"t{i}")
    api = client_for(alice)
    api.get("/api/v1/executions/?limit=1")  # warm the token's last_used_at write
    with django_assert_max_num_queries(8) as small:
        api.get("/api/v1/executions/?limit=2")
    with django_assert_max_num_queries(8) as large:
        api.get("/api/v1/executions/?limit=30")
    assert len(small.captured_queries) == len(large.captured_queries)


def _read_sse(response, until: str = "execution_completed", limit: int = 200) -> list[dict]:
    events: list[dict] = []
    current: dict = {}
    for line in response.iter_lines():
        if line.startswith("id: "):
            current["id"] = int(line[4:])
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and current:
            events.append(current)
            if current.get("event") == until or len(events) >= limit:
                break
            current = {}
    return events


@pytest.mark.slow
def test_stream_replays_then_follows_live(org, alice, make_agent, client_for, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"])
    api = client_for(alice)
    headers = {"Authorization": f"Bearer {api.raw_token}"}
    providers_at_fake.script(tool_call("echo", {"text": "hi"}), text("done"))
    finished = api.post(f"/api/v1/agents/{agent.id}/execute/", {"task": "a"}, format="json").json()
    run_execution(finished["id"])
    with asgi_server() as base:
        url = f"{base}/api/v1/executions/{finished['id']}/stream/"
        with httpx.stream("GET", url, headers=headers, timeout=20) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            replay = _read_sse(response)
        ids = [e["id"] for e in replay]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert replay[0]["event"] == "execution_started" and replay[-1]["event"] == "execution_completed"
        # Resume after the third event: only what came later.
        with httpx.stream("GET", url, headers={**headers, "Last-Event-ID": str(ids[2])}, timeout=20) as response:
            rest = _read_sse(response)
        assert [e["id"] for e in rest] == ids[3:]

        # Live: subscribe first, then run; token deltas arrive because someone is watching.
        providers_at_fake.script(text("streamed answer"))
        live = api.post(f"/api/v1/agents/{agent.id}/execute/", {"task": "b"}, format="json").json()
        received: list[dict] = []

        def listen() -> None:
            with httpx.stream(
                "GET", f"{base}/api/v1/executions/{live['id']}/stream/", headers=headers, timeout=30
            ) as r:
                received.extend(_read_sse(r))

        listener = threading.Thread(target=listen)
        listener.start()
        from executions.streaming import has_subscribers

        wait_for(lambda: has_subscribers(live["id"]), 10, message="SSE subscription")
        run_execution(live["id"])
        connection.close()
        listener.join(30)
        names = [e["event"] for e in received]
        assert "think_token" in names and names[-1] == "execution_completed"
        assert "".join(e["data"]["text"] for e in received if e["event"] == "think_token") == "streamed answer"

        denied = httpx.get(url, timeout=5)
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "NotAuthenticated"

        # What a browser's EventSource sends: Accept: text/event-stream only.
        sse_only = {**headers, "Accept": "text/event-stream"}
        with httpx.stream("GET", url, headers=sse_only, timeout=20) as response:
            assert response.status_code == 200
            assert [e["id"] for e in _read_sse(response)] == ids
        missing = httpx.get(
            f"{base}/api/v1/executions/00000000-0000-0000-0000-000000000000/stream/", headers=sse_only, timeout=5
        )
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"
        assert missing.headers["content-type"].startswith("application/json")


def test_who_sees_which_runs_in_the_list(org, other_org, alice, mia, oscar, make_agent, client_for):
    """Owners and admins see every run of their organization (deleted agents' included);
    members see the runs of the agents they may see; nobody sees another organization's."""
    from agents.services.agents import agent_delete
    from executions.services import execution_start

    shared = make_agent(name="Shared", visibility="organization")
    private = make_agent(name="Private", visibility="private")
    gone = make_agent(name="Gone", visibility="organization")
    runs = {a.name: execution_start(agent=a, organization=org, task="t")[0] for a in (shared, private, gone)}
    agent_delete(actor=None, agent=gone, by_user=alice)

    def listed(user) -> set[str]:
        body = client_for(user).get("/api/v1/executions/?limit=100").json()
        assert body["total"] == len(body["results"])
        return {r["id"] for r in body["results"]}

    assert listed(alice) == {str(e.pk) for e in runs.values()}
    assert listed(mia) == {str(runs["Shared"].pk)}
    assert listed(oscar) == set()
    # One run by id: the same rule.
    assert client_for(alice).get(f"/api/v1/executions/{runs['Gone'].pk}/").status_code == 200
    assert_error(client_for(mia).get(f"/api/v1/executions/{runs['Private'].pk}/"), 404, "NotFound")
    assert_error(client_for(oscar).get(f"/api/v1/executions/{runs['Shared'].pk}/"), 404, "NotFound")


def _stored_input_schema(agent, schema) -> None:
    """An input schema saved before schemas were checked (the version's snapshot, as stored)."""
    from agents.models import AgentVersion

    version = AgentVersion.objects.get(pk=agent.current_version_id)
    AgentVersion.objects.filter(pk=version.pk).update(config={**version.config, "input_schema": schema})


def test_a_stored_remote_reference_is_never_fetched_on_execute(org, alice, make_agent, client_for, schema_document):
    # H1: the web process fetched the URL and echoed the document in the 400.
    agent = make_agent()
    _stored_input_schema(agent, {"type": "object", "properties": {"n": {"$ref": schema_document.url("/secret")}}})
    response = client_for(alice).post(
        f"/api/v1/agents/{agent.id}/execute/", {"task": "x", "context": {"n": 1}}, format="json"
    )
    error = assert_error(response, 400, "InvalidInput")
    assert "only references within the schema" in error["details"]["validation_errors"]["context"][0]
    assert schema_document.requests == [] and SCHEMA_SECRET not in response.content.decode()
    assert Execution.objects.count() == 0


def test_a_stored_self_reference_is_a_400_not_a_500(org, alice, make_agent, client_for):
    agent = make_agent()
    _stored_input_schema(agent, {"$ref": "#"})
    response = client_for(alice).post(
        f"/api/v1/agents/{agent.id}/execute/", {"task": "x", "context": {"a": 1}}, format="json"
    )
    error = assert_error(response, 400, "InvalidInput")
    assert "refers to itself" in error["details"]["validation_errors"]["context"][0]
    assert Execution.objects.count() == 0


def test_a_backtracking_pattern_gets_the_right_verdict(org, alice, make_agent, client_for):
    # H3: 30 characters took 26 s in the web process with Python's re, holding everyone up;
    # 60 would take longer than the universe. RE2 answers in linear time (see
    # tests/config/test_json_schema.py for the engine).
    agent = make_agent(
        input_schema={"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}}
    )
    url = f"/api/v1/agents/{agent.id}/execute/"
    api = client_for(alice)
    error = assert_error(
        api.post(url, {"task": "x", "context": {"code": "a" * 60 + "!"}}, format="json"), 400, "InvalidInput"
    )
    assert "does not match" in error["details"]["validation_errors"]["context"][0]
    assert Execution.objects.count() == 0
    assert api.post(url, {"task": "x", "context": {"code": "a" * 60}}, format="json").status_code == 202


@pytest.mark.slow
def test_the_asgi_server_answers_hostile_schemas_and_bodies_with_400s(
    org, alice, make_agent, client_for, schema_document
):
    # The web process is uvicorn; these are the requests of H1, H3 and M5 as they arrive there.
    pattern = make_agent(
        name="Pattern",
        input_schema={"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}},
    )
    remote = make_agent(name="Remote")
    _stored_input_schema(remote, {"$ref": schema_document.url("/secret")})
    headers = {"Authorization": f"Bearer {client_for(alice).raw_token}"}
    with asgi_server() as base:
        evil = {"task": "x", "context": {"code": "a" * 60 + "!"}}
        answer = httpx.post(f"{base}/api/v1/agents/{pattern.id}/execute/", json=evil, headers=headers, timeout=20)
        assert answer.status_code == 400 and "does not match" in answer.text
        answer = httpx.post(
            f"{base}/api/v1/agents/{remote.id}/execute/", json={"task": "x"}, headers=headers, timeout=20
        )
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "InvalidInput"
        deep = "[" * 1000 + "]" * 1000
        answer = httpx.post(
            f"{base}/api/v1/agents/", content=deep, headers={**headers, "Content-Type": "application/json"}, timeout=20
        )
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "InvalidInput"
    assert schema_document.requests == [] and SCHEMA_SECRET not in answer.text
    assert Execution.objects.count() == 0
