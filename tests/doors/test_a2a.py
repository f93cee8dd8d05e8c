"""The A2A server with the official a2a-sdk client against a live server and a real worker:
the Agent Card, a message (and a continued conversation), a streamed message, get and
cancel, a run waiting for approval, and tenancy (another organization's token gets nothing)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, A2AClientError, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import A2AError, TaskNotCancelableError, TaskNotFoundError

from bench.fakes.script import text, tool_call
from executions.models import Execution
from tools.models import AgentCapabilityGrant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def message(words: str, context_id: str = "") -> pb.SendMessageRequest:
    return pb.SendMessageRequest(
        message=pb.Message(
            message_id=str(uuid.uuid4()), context_id=context_id, role=pb.ROLE_USER, parts=[pb.Part(text=words)]
        )
    )


async def _session(doors, token: str, agent_id: Any, work, *, streaming: bool = False):
    """Resolve the card with the token, make the SDK's client from it, run ``work(client, card)``."""
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        card = await A2ACardResolver(http, f"{doors.url}/a2a/{agent_id}").get_agent_card()
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=streaming)).create(card)
        return await work(client, card)


def run(doors, token, agent_id, work, **kw):
    return asyncio.run(_session(doors, token, agent_id, work, **kw))


async def collect(client, request) -> list[pb.StreamResponse]:
    return [event async for event in client.send_message(request)]


def test_the_agent_card(doors, org, alice, oscar, make_agent, synced_tools, token_for):
    agent = make_agent(name="Mailer", description="Writes and sends emails.", allowed_tools=["email_send"])

    async def card_only(client, card):
        return card

    card = run(doors, token_for(alice), agent.pk, card_only)
    assert card.name == "Mailer" and card.description == "Writes and sends emails." and card.version == "1.0.0"
    (interface,) = card.supported_interfaces
    assert interface.url == f"{doors.url}/a2a/{agent.pk}/" and interface.protocol_binding == "JSONRPC"
    assert interface.protocol_version == "1.0"
    assert card.capabilities.streaming and not card.capabilities.push_notifications
    skills = {s.id: s for s in card.skills}
    assert skills["mailer"].description == "Writes and sends emails."
    assert "tool:email_send" in skills and len(skills) == 2  # only the tools the agent may use
    (scheme,) = card.security_schemes.values()
    assert scheme.http_auth_security_scheme.scheme == "bearer"
    assert list(card.security_requirements[0].schemes) == list(card.security_schemes)
    path = f"{doors.url}/a2a/{agent.pk}/.well-known/agent-card.json"
    assert httpx.get(path, timeout=10).status_code == 401
    foreign = httpx.get(path, headers={"Authorization": f"Bearer {token_for(oscar)}"}, timeout=10)
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "AgentNotFound"


def test_send_and_continue_the_context(doors, org, alice, make_agent, providers_at_fake, token_for):
    agent = make_agent(name="Helper")
    providers_at_fake.script(text("Hello Ada."), text("You are Ada."))

    async def two_turns(client, card):
        (first,) = await collect(client, message("I am Ada."))
        (second,) = await collect(client, message("Who am I?", context_id=first.task.context_id))
        return first.task, second.task

    first, second = run(doors, token_for(alice), agent.pk, two_turns)
    assert first.status.state == pb.TASK_STATE_COMPLETED
    assert first.artifacts[0].parts[0].text == "Hello Ada."
    assert [m.role for m in first.history] == [pb.ROLE_USER, pb.ROLE_AGENT]
    assert second.context_id == first.context_id and second.artifacts[0].parts[0].text == "You are Ada."
    execution = Execution.objects.get(pk=second.id)
    assert execution.trigger_type == "a2a" and execution.status == "completed" and execution.cost > 0
    turns = [(m["role"], m["content"]) for m in providers_at_fake.chat_requests[-1].body["messages"][1:]]
    assert turns == [("user", "I am Ada."), ("assistant", "Hello Ada."), ("user", "Who am I?")]


def test_a_streamed_message(doors, org, alice, make_agent, providers_at_fake, token_for):
    agent = make_agent(name="Helper")
    providers_at_fake.script(text("streamed words arrive", usage={"input": 12, "output": 3}))

    async def stream(client, card):
        return await collect(client, message("Tell me"))

    events = run(doors, token_for(alice), agent.pk, stream, streaming=True)
    assert events[0].HasField("task") and events[0].task.status.state == pb.TASK_STATE_SUBMITTED
    chunks = [e.artifact_update for e in events if e.HasField("artifact_update")]
    assert "".join(p.text for c in chunks for p in c.artifact.parts) == "streamed words arrive"
    assert chunks[-1].last_chunk
    states = [e.status_update.status.state for e in events if e.HasField("status_update")]
    assert states[-1] == pb.TASK_STATE_COMPLETED
    assert Execution.objects.get(pk=events[0].task.id).status == "completed"


def test_approval_wait_get_and_cancel(doors, org, alice, make_agent, providers_at_fake, synced_tools, token_for):
    agent = make_agent(name="Mailer", allowed_tools=["email_send"])
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["send_emails"])
    providers_at_fake.script(tool_call("email_send", {"to": ["a@example.test"], "subject": "Hi", "body": "Hello"}))

    async def park_get_cancel(client, card):
        (sent,) = await collect(client, message("Mail them"))
        got = await client.get_task(pb.GetTaskRequest(id=sent.task.id))
        cancelled = await client.cancel_task(pb.CancelTaskRequest(id=sent.task.id))
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(pb.CancelTaskRequest(id=sent.task.id))
        with pytest.raises(TaskNotFoundError):
            await client.get_task(pb.GetTaskRequest(id=str(uuid.uuid4())))
        return sent.task, got, cancelled

    sent, got, cancelled = run(doors, token_for(alice), agent.pk, park_get_cancel)
    assert sent.status.state == pb.TASK_STATE_AUTH_REQUIRED
    link = sent.metadata["approval_url"]
    assert link.startswith(f"{doors.url}/approvals/") and link in sent.status.message.parts[0].text
    assert got.id == sent.id and got.status.state == pb.TASK_STATE_AUTH_REQUIRED
    assert cancelled.status.state == pb.TASK_STATE_CANCELED
    assert Execution.objects.get(pk=sent.id).status == "cancelled"


def test_a_foreign_token_gets_nothing(doors, org, alice, vic, oscar, make_agent, providers_at_fake, token_for):
    agent = make_agent(name="Helper")
    theirs = make_agent(name="Other")  # oscar's organization has no agent of org's
    providers_at_fake.script(text("done"))

    async def send(client, card):
        return await collect(client, message("Hi"))

    (mine,) = run(doors, token_for(alice), agent.pk, send)
    # oscar cannot read the card, so the SDK's client cannot even be made for org's agent.
    with pytest.raises(A2AClientError):
        run(doors, token_for(oscar), agent.pk, send)
    # Nor reach org's task through the JSON-RPC endpoint directly.
    body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": mine.task.id}}
    headers = {"Authorization": f"Bearer {token_for(oscar)}", "A2A-Version": "1.0"}
    response = httpx.post(f"{doors.url}/a2a/{agent.pk}/", json=body, headers=headers, timeout=10)
    assert response.status_code == 404 and mine.task.id not in response.text
    # A task id of one agent is not found through another agent's URL.
    own = {"Authorization": f"Bearer {token_for(alice)}", "A2A-Version": "1.0"}
    elsewhere = httpx.post(f"{doors.url}/a2a/{theirs.pk}/", json=body, headers=own, timeout=10).json()
    assert elsewhere["error"]["code"] == -32001 and "result" not in elsewhere
    # A viewer may read the card but not send.
    with pytest.raises(A2AError) as refused:
        run(doors, token_for(vic), agent.pk, send)
    assert "allow" in str(refused.value) or "scope" in str(refused.value)
    # The v0.3 method names answer too (tasks/get).
    old = {"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": mine.task.id}}
    legacy = httpx.post(f"{doors.url}/a2a/{agent.pk}/", json=old, headers={"Authorization": own["Authorization"]})
    assert legacy.json()["result"]["status"]["state"] == "completed", legacy.text
    assert Execution.objects.filter(organization=org).count() == 1
