"""The MCP door (``/mcp/``) driven by the official SDK's client (``ClientSession`` over streamable
HTTP) against a live uvicorn and a Celery worker on the test database, the model a scripted fake
speaking OpenAI's protocol: list the agents as tools, call one and get its answer and execution
id, progress while it runs, a run parked for approval answers at once with the approver link, a
failing run answers ``isError``, and another organization's token sees and runs nothing."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from django.conf import settings
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from accounts.access import Actor
from accounts.models import Membership
from accounts.services import api_token_create
from agents.services import agent_create, agent_publish
from approvals.models import ApprovalRequest
from bench.fakes.script import HttpError, text, tool_call
from executions.models import Execution
from tests.fakes.fixtures import FAKE_API_KEY
from tests.processes import asgi_server, celery_worker
from tools.mcp.handler import IDEMPOTENCY_META_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def server_env(providers_at_fake) -> dict[str, str]:
    from redis import Redis

    from tools.services import tools_sync

    tools_sync()
    Redis.from_url(settings.CELERY_BROKER_URL).delete("io", "default")
    return {
        "OPENAI_BASE_URL": providers_at_fake.openai_base_url,
        "OPENAI_API_KEY": FAKE_API_KEY,
        "MEMORY_EXTRACTION_ENABLED": "0",
        "AGENTRY_BASE_URL": "https://agentry.example.test",
    }


async def _session_do(url: str, token: str, work: Any) -> Any:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(60))
    async with (
        http,
        streamable_http_client(f"{url}/mcp/", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await work(session)


def _mcp(url: str, token: str, work: Any) -> Any:
    return asyncio.run(_session_do(url, token, work))


def _call_catching(name: str, arguments: dict[str, Any]) -> Any:
    async def work(session: ClientSession) -> Any:
        try:
            return await session.call_tool(name, arguments)
        except MCPError as error:  # a protocol error (unknown tool): what the SDK raises
            return error

    return work


def test_agents_are_tools_and_a_call_is_a_run(org, other_org, alice, oscar, make_agent, providers_at_fake, server_env):
    researcher = make_agent(name="Field Researcher", description="Finds facts and cites them.")
    make_agent(
        name="Typed",
        input_schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    )
    foreign_actor = Actor(organization=other_org, user=oscar, membership=Membership.objects.get(user=oscar))
    foreign = agent_create(actor=foreign_actor, data={"name": "Foreign", "system_prompt": "x"})
    agent_publish(actor=foreign_actor, agent=foreign)
    agent_create(actor=foreign_actor, data={"name": "Draft only", "system_prompt": "x"})  # never published
    _, token = api_token_create(user=alice, organization=org)
    _, oscar_token = api_token_create(user=oscar, organization=other_org)
    providers_at_fake.script(text("Paris is the capital of France.", delay_ms=1500))
    progress: list[float] = []

    async def listing_and_call(session: ClientSession) -> tuple[types.ListToolsResult, types.CallToolResult]:
        listed = await session.list_tools()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        called = await session.call_tool(
            "field_researcher",
            {"task": "What is the capital of France?", "context": {"source": "atlas"}},
            progress_callback=on_progress,
            meta={IDEMPOTENCY_META_KEY: "mcp-call-1"},
        )
        return listed, called

    with asgi_server(server_env) as url, celery_worker(concurrency=2, extra_env=server_env):
        listed, called = _mcp(url, token, listing_and_call)
        foreign_listed = _mcp(url, oscar_token, lambda s: s.list_tools())
        foreign_call = _mcp(url, oscar_token, _call_catching("field_researcher", {"task": "leak"}))
        # The same idempotency key again: the first run answers, no second run starts.
        again = _mcp(
            url, token, lambda s: s.call_tool("field_researcher", {"task": "What is the capital of France?",
                                                                   "context": {"source": "atlas"}},
                                              meta={IDEMPOTENCY_META_KEY: "mcp-call-1"})
        )  # fmt: skip

    tools = {tool.name: tool for tool in listed.tools}
    assert sorted(tools) == ["field_researcher", "typed"]
    assert tools["field_researcher"].description == "Finds facts and cites them."
    assert tools["field_researcher"].input_schema["required"] == ["task"]
    assert tools["typed"].input_schema["properties"]["context"]["required"] == ["n"]  # the agent's own schema

    assert not called.is_error, called.content
    assert called.content[0].text == "Paris is the capital of France."
    summary = called.structured_content
    run = Execution.objects.get(pk=summary["execution_id"])
    assert (run.agent, run.status, run.trigger_type) == (researcher, "completed", "mcp")
    assert run.input == {"task": "What is the capital of France?", "context": {"source": "atlas"}}
    assert run.triggered_by_user == alice and run.triggered_by_token is not None
    assert summary == {
        "execution_id": str(run.pk),
        "status": "completed",
        "cost": str(run.cost.quantize(Decimal("0.000001"))),
        "tokens_total": run.tokens_total,
    }
    assert run.tokens_total > 0
    assert progress, "no progress notification while the run took 1.5 s"
    assert again.structured_content["execution_id"] == str(run.pk)
    assert Execution.objects.filter(agent=researcher).count() == 1

    # The other organization sees only its own published agent and cannot reach alice's.
    assert [tool.name for tool in foreign_listed.tools] == ["foreign"]
    assert isinstance(foreign_call, MCPError) and "Unknown tool 'field_researcher'" in str(foreign_call)
    assert not Execution.objects.filter(organization=other_org).exists()


def test_unknown_tool_and_bad_input_and_who_sees_what(org, alice, vic, make_agent, server_env):
    make_agent(name="Echo")
    _, token = api_token_create(user=alice, organization=org)
    _, viewer_token = api_token_create(user=vic, organization=org)  # a viewer may not execute
    _, read_only = api_token_create(user=alice, organization=org, scopes=["agents:read"])

    async def calls(session: ClientSession) -> list[Any]:
        cases = (("nope", {"task": "x"}), ("echo", {"task": ""}), ("echo", {"task": "x", "extra": 1}))
        return [await _call_catching(name, arguments)(session) for name, arguments in cases]

    with asgi_server(server_env) as url:
        unknown, empty, extra = _mcp(url, token, calls)
        seen = {
            who: _mcp(url, t, lambda s: s.list_tools()) for who, t in (("viewer", viewer_token), ("read", read_only))
        }
        viewer_call = _mcp(url, viewer_token, _call_catching("echo", {"task": "x"}))
    assert {who: [tool.name for tool in listed.tools] for who, listed in seen.items()} == {"viewer": [], "read": []}
    assert isinstance(viewer_call, MCPError)
    assert isinstance(unknown, MCPError) and "Unknown tool 'nope'" in str(unknown)
    assert empty.is_error and empty.structured_content["error"]["code"] == "InvalidInput"
    assert extra.is_error and "extra" in extra.content[0].text
    assert not Execution.objects.exists()


def test_a_run_parked_for_approval_answers_at_once_with_the_link(org, alice, make_agent, providers_at_fake, server_env):
    agent = make_agent(
        name="Notifier",
        allowed_tools=["notify_user"],
        constraints=[{"text": "Ask a person first.", "requires_approval_for": ["notify_user"]}],
    )
    _, token = api_token_create(user=alice, organization=org)
    providers_at_fake.script(tool_call("notify_user", {"message": "The report is ready."}))
    with asgi_server(server_env) as url, celery_worker(concurrency=2, extra_env=server_env):
        result = _mcp(url, token, lambda s: s.call_tool("notifier", {"task": "Tell me the report is ready."}))
    approval = ApprovalRequest.objects.get(execution__agent=agent)
    assert not result.is_error
    assert result.structured_content["status"] == "waiting_approval"
    link = f"https://agentry.example.test/approvals/{approval.pk}/"
    assert result.structured_content["approval_url"] == link
    assert link in result.content[0].text


def test_a_failed_run_is_an_error_result(org, alice, make_agent, providers_at_fake, server_env):
    make_agent(name="Fragile")
    _, token = api_token_create(user=alice, organization=org)
    providers_at_fake.script(*[HttpError(400, "context length exceeded")] * 3)
    with asgi_server(server_env) as url, celery_worker(concurrency=2, extra_env=server_env):
        result = _mcp(url, token, lambda s: s.call_tool("fragile", {"task": "Too long."}))
    assert result.is_error
    run = Execution.objects.get(pk=result.structured_content["execution_id"])
    assert run.status == "failed"
    assert result.structured_content["error"]["code"] == run.error_code != ""


def test_the_door_refuses_without_a_valid_token_and_on_a_foreign_host(org, alice, server_env):
    _, token = api_token_create(user=alice, organization=org)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    with asgi_server(server_env) as url:
        none = httpx.post(f"{url}/mcp/", json=body, headers=headers)
        bad = httpx.post(f"{url}/mcp/", json=body, headers={**headers, "Authorization": "Bearer agt_nope"})
        host = httpx.post(
            f"{url}/mcp/", json=body, headers={**headers, "Authorization": f"Bearer {token}", "Host": "evil.test"}
        )
        slashless = httpx.post(f"{url}/mcp", json=body, headers={**headers, "Authorization": "Bearer agt_nope"})
    assert (none.status_code, none.json()["error"]["code"]) == (401, "NotAuthenticated")
    assert none.headers["www-authenticate"].startswith("Bearer")
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "InvalidToken")
    assert (host.status_code, host.json()["error"]["code"]) == (400, "MalformedRequest")
    assert slashless.status_code == 401
