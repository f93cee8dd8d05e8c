"""The doors in the authorization matrix (the /api/v1 matrix is generated from the OpenAPI
schema, which these paths are not in: OpenAI's and A2A's specifications are their contracts).

Every operation is called anonymously (401), by another organization's admin with this
organization's ids (404, or a list without them), and by each role of the organization:
below the least role refused, from it on allowed. Runs are only started, never awaited
(streams are not read; A2A sends ``returnImmediately``), so no worker is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from executions.models import Execution
from executions.services import execution_start

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = ("viewer", "member", "admin", "owner")
DENIED = {"InsufficientPermissions", "AgentAccessDenied"}
MATRIX = {
    "GET /openai/v1/models": "viewer",  # a viewer gets an empty list: it may execute nothing
    "GET /openai/v1/models/{slug}": "member",
    "POST /openai/v1/chat/completions": "member",
    "POST /openai/v1/responses": "member",
    "GET /openai/v1/responses/{response_id}": "viewer",
    "GET /a2a/{agent_id}/.well-known/agent-card.json": "viewer",
    "POST /a2a/{agent_id}/ SendMessage": "member",
    "POST /a2a/{agent_id}/ GetTask": "viewer",
    "POST /a2a/{agent_id}/ CancelTask": "member",
}


@dataclass
class Call:
    method: str
    path: str
    body: dict | None = None
    kind: str = "openai"  # the error shape: "openai", "agentry" (§11) or "jsonrpc"


def calls(agent, execution, a2a_task) -> dict[str, Call]:
    chat = {"model": agent.slug, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    send = {
        "message": {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "Hi"}]},
        "configuration": {"returnImmediately": True},
    }

    def rpc(method: str, params: dict) -> dict:
        return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}

    base = f"/a2a/{agent.pk}/"
    return {
        "GET /openai/v1/models": Call("get", "/openai/v1/models"),
        "GET /openai/v1/models/{slug}": Call("get", f"/openai/v1/models/{agent.slug}"),
        "POST /openai/v1/chat/completions": Call("post", "/openai/v1/chat/completions", chat),
        "POST /openai/v1/responses": Call(
            "post", "/openai/v1/responses", {"model": agent.slug, "input": "Hi", "stream": True}
        ),
        "GET /openai/v1/responses/{response_id}": Call("get", f"/openai/v1/responses/resp_{execution.pk.hex}"),
        "GET /a2a/{agent_id}/.well-known/agent-card.json": Call(
            "get", f"{base}.well-known/agent-card.json", kind="agentry"
        ),
        "POST /a2a/{agent_id}/ SendMessage": Call("post", base, rpc("SendMessage", send), "jsonrpc"),
        "POST /a2a/{agent_id}/ GetTask": Call("post", base, rpc("GetTask", {"id": str(a2a_task.pk)}), "jsonrpc"),
        "POST /a2a/{agent_id}/ CancelTask": Call("post", base, rpc("CancelTask", {"id": str(a2a_task.pk)}), "jsonrpc"),
    }


def send(client: APIClient, call: Call):
    with transaction.atomic():
        headers = {"HTTP_A2A_VERSION": "1.0"} if call.kind == "jsonrpc" else {}
        if call.method == "post":
            response = client.post(call.path, call.body, format="json", **headers)
        else:
            response = client.get(call.path, **headers)
        transaction.set_rollback(True)
    return response


def error_code(response, kind: str) -> tuple[int, str]:
    """(HTTP status, error code) of a refusal, checking its shape; (status, "") when allowed."""
    if kind == "jsonrpc" and response.status_code == 200:
        body = response.json()
        if "error" not in body:
            return 200, ""
        # The SDK puts an error's data in a google.rpc.ErrorInfo's metadata.
        metadata = next((d.get("metadata") or {} for d in body["error"].get("data") or []), {})
        return 200, metadata.get("code", str(body["error"]["code"]))
    if response.status_code < 400:
        return response.status_code, ""
    error = response.json()["error"]
    if kind == "openai":
        assert set(error) == {"message", "type", "param", "code"}, error
    else:
        assert {"code", "message", "details", "request_id"} <= set(error), error
    return response.status_code, error["code"]


@pytest.fixture
def world(org, alice, adam, mia, vic, oscar, make_agent, client_for):
    agent = make_agent(name="Matrix")
    execution, _ = execution_start(agent=agent, organization=org, task="earlier", trigger_type="openai")
    a2a_task, _ = execution_start(
        agent=agent, organization=org, task="a task", trigger_type="a2a", trigger_data={"context_id": "c-1"}
    )
    people = {"viewer": vic, "member": mia, "admin": adam, "owner": alice}
    clients = {role: client_for(user) for role, user in people.items()}
    return agent, execution, a2a_task, clients, client_for(oscar)


@pytest.mark.parametrize("operation", sorted(MATRIX))
def test_door_authorization(operation, world):
    agent, execution, a2a_task, clients, foreign = world
    call = calls(agent, execution, a2a_task)[operation]
    least = MATRIX[operation]
    own_ids = {str(agent.pk), agent.slug, str(execution.pk), execution.pk.hex, str(a2a_task.pk)}

    anonymous = send(APIClient(), call)
    assert error_code(anonymous, "agentry" if call.kind == "jsonrpc" else call.kind)[0] == 401

    theirs = send(foreign, call)
    text = theirs.content.decode() if not getattr(theirs, "streaming", False) else ""
    if operation != "GET /openai/v1/models":  # every other call names org's agent or run
        assert error_code(theirs, "agentry" if call.kind == "jsonrpc" else call.kind)[0] == 404, text[:300]
    else:
        assert theirs.status_code == 200 and not any(i in text for i in own_ids), text[:300]

    for role in ROLES:
        status, code = error_code(send(clients[role], call), call.kind)
        if ROLES.index(role) < ROLES.index(least):
            assert code in DENIED, (role, status, code)
        else:
            assert status < 400 and code in ("", "-32002"), (role, status, code)  # -32002: not cancelable
    assert Execution.objects.filter(organization=agent.organization).count() == 2  # every call rolled back
