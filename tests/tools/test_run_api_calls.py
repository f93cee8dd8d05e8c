"""A run's ``api_calls_count`` counts its tools' calls to other services, not only its model
calls: an organization's HTTP tool (through the SSRF-guarded fetch) and an MCP server's tool."""

from __future__ import annotations

import pytest

from bench.fakes.script import text, tool_call
from executions.models import Execution, ExecutionLog
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tools.mcp.services import mcp_server_create, mcp_server_sync
from tools.models import AgentCapabilityGrant, McpServerStatus
from tools.services import http_tool_create

pytestmark = pytest.mark.django_db(transaction=True)


def run(agent, org, task: str) -> Execution:
    execution, _ = execution_start(agent=agent, organization=org, task=task)
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    return execution


def test_an_http_tools_requests_are_counted(org, owner_actor, make_agent, providers_at_fake, http_fake, synced_tools):
    http_fake.route("GET", "/orders/A1", json={"order": "A1", "state": "shipped"})
    http_tool_create(
        actor=owner_actor,
        data={
            "name": "order_status",
            "description": "Look up an order",
            "parameters_schema": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
            "url": http_fake.url("/orders/{order_id}"),
            "method": "GET",
        },
    )
    agent = make_agent(allowed_tools=["order_status"])
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["access_external_apis"])
    providers_at_fake.script(
        tool_call("order_status", {"order_id": "A1"}), tool_call("order_status", {"order_id": "A1"}), text("Shipped.")
    )
    execution = run(agent, org, "Where is order A1?")
    assert len(http_fake.requests_to("/orders/A1")) == 2
    assert execution.llm_calls == 3 and execution.tool_calls == 2
    assert execution.api_calls_count == 3 + 2
    logged = ExecutionLog.objects.filter(execution=execution, message="Tool 'order_status' completed.")
    assert [line.metadata["api_calls"] for line in logged] == [1, 1]


def test_an_mcp_tools_call_is_counted(org, owner_actor, mcp_fake, make_agent, providers_at_fake):
    server = mcp_server_sync(server=mcp_server_create(actor=owner_actor, data={"name": "notes", "url": mcp_fake.url}))
    assert server.status == McpServerStatus.OK, server.last_error
    agent = make_agent(allowed_tools=["mcp__notes__*"])
    providers_at_fake.script(tool_call("mcp__notes__upsert_note", {"key": "plan", "value": "ship"}), text("Saved."))
    execution = run(agent, org, "Save the plan")
    assert len(mcp_fake.calls_of("upsert_note")) == 1
    assert execution.api_calls_count == execution.llm_calls + 1 == 3
