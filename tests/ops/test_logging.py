"""JSON log lines carry the request id, the organization, the agent and the execution."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from config.logging import log_context_var
from executions.models import ExecutionStatus
from executions.runtime.loop import run_execution
from executions.runtime.tools_port import LocalTool, register_local_tool, unregister_local_tool
from executions.services import execution_start

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines():
    """The configured console handler (JSON formatter + ContextFilter) writing to a buffer."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler) and h.filters)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)

    def read() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield read
    handler.setStream(previous)


@pytest.fixture
def noisy_tool():
    def handler(*, context, text: str) -> dict:
        logging.getLogger("agentry.test.tool").warning("tool ran")
        return {"ok": True}

    register_local_tool(
        LocalTool(
            name="noisy",
            handler=handler,
            description="Logs a line.",
            parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        )
    )
    yield
    unregister_local_tool("noisy")


def test_a_runs_log_lines_carry_execution_and_agent_ids(org, make_agent, noisy_tool, json_lines):
    agent = make_agent(
        name="Logger", allowed_tools=["noisy"], model_config={"provider": "sandbox", "model": "sandbox-echo"}
    )
    execution, _ = execution_start(agent=agent, organization=org, task="please use noisy now")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED, (execution.error, execution.error_code)

    lines = [line for line in json_lines() if line["message"] == "tool ran"]
    assert lines, json_lines()
    for line in lines:
        assert line["execution_id"] == str(execution.pk)
        assert line["agent_id"] == str(agent.pk)
        assert line["organization_id"] == str(org.pk)
    # The context does not leak past the run into whatever the worker does next.
    assert log_context_var.get() == {}


def test_an_api_error_line_carries_request_id_and_organization(org, alice, client_for, json_lines):
    client = client_for(alice)
    missing = uuid.uuid4()
    response = client.get(f"/api/v1/agents/{missing}/", HTTP_X_REQUEST_ID="req-ops-42")
    assert response.status_code == 404

    lines = [line for line in json_lines() if line.get("request_id") == "req-ops-42"]
    assert lines, json_lines()
    error_line = next(line for line in lines if line["level"] == "WARNING" and str(missing) in line["message"])
    assert error_line["organization_id"] == str(org.pk)
    # No secret reaches a log line: not the bearer token, not the Authorization header.
    text = json.dumps(lines)
    assert client.raw_token not in text
    assert "Bearer" not in text
