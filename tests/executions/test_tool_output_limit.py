"""One limit on what a tool hands back: AGENTRY_TOOL_RESULT_MAX_CHARS, whichever tool port
ran the tool (the runtime had its own 16,000-character cap beside the setting)."""

from __future__ import annotations

import json

import pytest

from bench.fakes.script import text, tool_call
from executions.runtime.loop import run_execution
from executions.runtime.tools_port import LocalTool, register_local_tool, tool_port, unregister_local_tool
from executions.services import execution_start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local_port_with_big_tool(settings):
    """The runtime's own LocalToolPort (not the tools app's gateway, which bounds by itself)
    and a tool that answers with ``size`` characters."""
    settings.AGENTRY_TOOL_PORT = "executions.runtime.tools_port.LocalToolPort"
    tool_port.cache_clear()
    register_local_tool(
        LocalTool(
            name="big",
            handler=lambda *, context, size: {"text": "x" * size},
            parameters={"type": "object", "properties": {"size": {"type": "integer"}}, "required": ["size"]},
        )
    )
    yield
    unregister_local_tool("big")
    tool_port.cache_clear()


@pytest.mark.parametrize(("limit", "size", "whole"), [(20_000, 17_000, True), (2_000, 5_000, False)])
def test_the_setting_is_the_one_limit(
    org, make_agent, providers_at_fake, local_port_with_big_tool, settings, limit, size, whole
):
    settings.AGENTRY_TOOL_RESULT_MAX_CHARS = limit
    agent = make_agent(allowed_tools=["big"])
    providers_at_fake.script(tool_call("big", {"size": size}), text("done"))
    execution, _ = execution_start(agent=agent, organization=org, task="Fetch it")
    run_execution(execution.pk)

    execution.refresh_from_db()
    assert execution.status == "completed", (execution.error_code, execution.error)
    act = execution.steps.get(step_type="act")
    if whole:  # above the old 16,000 cap, within the setting: nothing cut
        assert act.tool_output == {"text": "x" * size}
    else:
        assert act.tool_output["truncated"] is True
        assert len(json.dumps(act.tool_output, ensure_ascii=False)) <= limit
