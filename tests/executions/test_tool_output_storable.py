"""What a tool hands back that PostgreSQL cannot store (security issue #14 follow-up): a NUL
character from a hostile page or server, a NaN in its JSON. The step and the tool-call row
are written anyway (NUL replaced with U+FFFD, NaN and infinities written as strings), the
run's log says so, and the run goes on."""

from __future__ import annotations

import json

import pytest

from bench.fakes.script import text, tool_call
from executions.runtime.loop import run_execution
from executions.runtime.tools_port import LocalTool, register_local_tool, unregister_local_tool
from executions.services import execution_start
from tests.tools.fixtures import *  # noqa: F403 (synced_tools, http_fake)
from tools.builtins.base import ToolError
from tools.models import AgentCapabilityGrant, Tool, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hostile_tool():
    """A local tool that answers, or fails, with what cannot be stored."""

    def handler(*, context, how: str) -> dict:
        if how == "raise":
            raise ToolError("the page said a\x00b")
        return {"text": "a\x00b", "k\x00": [float("nan"), float("inf"), -float("inf"), 1.5]}

    register_local_tool(
        LocalTool(
            name="hostile",
            handler=handler,
            description="Answers badly.",
            parameters={"type": "object", "properties": {"how": {"type": "string"}}, "required": ["how"]},
        )
    )
    yield
    unregister_local_tool("hostile")


def test_a_tools_unstorable_answer_is_made_storable_and_the_run_goes_on(
    org, make_agent, providers_at_fake, hostile_tool
):
    agent = make_agent(allowed_tools=["hostile"])
    providers_at_fake.script(
        tool_call("hostile", {"how": "answer"}),
        tool_call("hostile", {"how": "raise"}),
        text("done"),
    )
    execution, _ = execution_start(agent=agent, organization=org, task="Use it")
    run_execution(execution.pk)

    execution.refresh_from_db()
    assert execution.status == "completed", (execution.error_code, execution.error)
    answered, raised = execution.steps.filter(step_type="act").order_by("step_number")
    assert answered.status == "completed"
    assert answered.tool_output == {"text": "a\ufffdb", "k\ufffd": ["NaN", "Infinity", "-Infinity", 1.5]}
    assert raised.status == "failed" and "the page said a\ufffdb" in raised.tool_output["error"]
    # What the model read next is what was stored.
    assert json.loads(providers_at_fake.chat_requests[1].body["messages"][-1]["content"]) == answered.tool_output
    logged = [line.message for line in execution.logs.filter(level="warn")]
    assert sum("hostile" in line and "U+FFFD" in line for line in logged) == 2, logged


def test_a_hostile_servers_nul_and_nan_reach_neither_the_step_nor_the_call_log_as_such(
    org, make_agent, providers_at_fake, http_fake
):
    http_fake.route("GET", "/data", text='{"name": "a\\u0000b", "score": NaN}', content_type="application/json")
    Tool.objects.create(
        organization=org,
        name="fetch_data",
        display_name="Fetch",
        description="Fetch the data.",
        category="custom",
        parameters_schema={"type": "object", "properties": {}},
        handler_type="http",
        handler_config={"url": http_fake.url("/data"), "method": "GET"},
        is_idempotent=True,
    )
    agent = make_agent(allowed_tools=["fetch_data"])
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["access_web"])
    providers_at_fake.script(tool_call("fetch_data", {}), text("done"))
    execution, _ = execution_start(agent=agent, organization=org, task="Fetch it")
    run_execution(execution.pk)

    execution.refresh_from_db()
    assert execution.status == "completed", (execution.error_code, execution.error)
    act = execution.steps.get(step_type="act")
    assert act.status == "completed", act.tool_output
    call = ToolCall.objects.get(execution=execution)
    assert call.status == "completed" and call.output_result == act.tool_output
    assert "a\ufffdb" in str(act.tool_output) and "'NaN'" in str(act.tool_output), act.tool_output
