"""Agents using MCP tools (issue #17): a run through the OpenAI SDK against the fake model
calls a real MCP server's tool; a destructive one waits for a person and runs once after;
a platform stdio server (``mcp-server-time`` from PyPI) serves an organization it is shared
with; a worker SIGKILLed mid-call re-runs an idempotent MCP tool and fails a non-idempotent
one with ``ToolInterrupted``."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest
from django.conf import settings

from accounts.access import Actor
from accounts.models import Membership
from approvals.models import ApprovalRequest
from approvals.services import approval_resolve
from bench.fakes.script import text, tool_call
from executions.models import Execution
from executions.runtime.loop import run_execution
from executions.services import execution_start
from executions.tasks import tick
from tests.fakes.fixtures import FAKE_API_KEY
from tests.processes import celery_worker, wait_for
from tools.mcp.handler import IDEMPOTENCY_META_KEY
from tools.mcp.platform import mcp_platform_servers_sync
from tools.mcp.services import mcp_server_create, mcp_server_sync
from tools.models import McpServer, McpServerStatus, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def notes(mcp_fake, owner_actor) -> McpServer:
    server = mcp_server_sync(server=mcp_server_create(actor=owner_actor, data={"name": "notes", "url": mcp_fake.url}))
    assert server.status == McpServerStatus.OK, server.last_error
    return server


def agent_calls(fake) -> list:
    return [r for r in fake.chat_requests if "response_format" not in r.body]


def test_an_agent_run_uses_an_mcp_servers_tools_allowed_by_a_wildcard(
    org, notes, mcp_fake, make_agent, providers_at_fake
):
    agent = make_agent(allowed_tools=["mcp__notes__*"], denied_tools=["mcp__notes__delete_note"])
    providers_at_fake.script(tool_call("mcp__notes__upsert_note", {"key": "plan", "value": "ship"}), text("Saved."))
    execution, _ = execution_start(agent=agent, organization=org, task="Save the plan")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    assert execution.output == {"text": "Saved."}
    offered = {t["function"]["name"] for t in agent_calls(providers_at_fake)[0].body["tools"]}
    assert "mcp__notes__read_note" in offered and "mcp__notes__upsert_note" in offered
    assert "mcp__notes__delete_note" not in offered  # denied wins
    assert not any(name.startswith("mcp__notes__remote_ref") for name in offered)
    (call,) = mcp_fake.calls_of("upsert_note")
    assert call.arguments == {"key": "plan", "value": "ship"}
    act = execution.steps.get(step_type="act")
    assert call.meta[IDEMPOTENCY_META_KEY] == f"{execution.pk}:{act.step_number}"
    assert act.tool_output["text"] == "saved plan"
    told = agent_calls(providers_at_fake)[-1].body["messages"][-1]["content"]
    assert "saved plan" in told
    logged = ToolCall.objects.get(execution=execution)
    assert (logged.tool_name, logged.status) == ("mcp__notes__upsert_note", "completed")


def test_a_destructive_tool_waits_for_a_person_and_runs_once_with_the_edit(
    org, adam, notes, mcp_fake, make_agent, providers_at_fake
):
    agent = make_agent(allowed_tools=["mcp__notes__*"])
    mcp_fake.notes.update({"draft": "x", "old": "y"})
    providers_at_fake.script(tool_call("mcp__notes__delete_note", {"key": "draft"}), text("Deleted."))
    execution, _ = execution_start(agent=agent, organization=org, task="Clean up")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "waiting_approval"
    assert mcp_fake.calls_of("delete_note") == []
    approval = ApprovalRequest.objects.get(execution=execution)
    assert approval.action_type == "mcp__notes__delete_note"
    actor = Actor(organization=org, user=adam, membership=Membership.objects.get(user=adam, organization=org))
    approval_resolve(approval=approval, actor=actor, approved=True, params={"key": "old"})
    run_execution(execution.pk)
    run_execution(execution.pk)  # a duplicate delivery changes nothing
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    assert [c.arguments for c in mcp_fake.calls_of("delete_note")] == [{"key": "old"}]
    assert mcp_fake.notes == {"draft": "x"}


def test_a_platform_stdio_server_from_its_package_serves_the_organizations_it_is_shared_with(
    org, other_org, make_agent, providers_at_fake, settings
):
    # mcp-server-time, published on PyPI, started by the worker over stdio.
    settings.AGENTRY_MCP_STDIO_SERVERS = [
        {"name": "time", "command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
         "shared_with": [org.slug]}
    ]  # fmt: skip
    assert "1 created" in mcp_platform_servers_sync()
    server = mcp_server_sync(server=McpServer.objects.get(name="time", organization__isnull=True))
    assert server.status == McpServerStatus.OK, server.last_error
    names = {t["tool_name"] for t in server.tools if t["offered"]}
    assert "mcp__time__get_current_time" in names
    agent = make_agent(allowed_tools=["mcp__time__*"])
    providers_at_fake.script(tool_call("mcp__time__get_current_time", {"timezone": "Europe/Paris"}), text("Done."))
    execution, _ = execution_start(agent=agent, organization=org, task="What time is it in Paris?")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    output = execution.steps.get(step_type="act").tool_output
    assert "Europe/Paris" in json.dumps(output)
    # Not shared with the other organization: neither listed nor callable there.
    from tools.selectors import tool_catalog

    assert "mcp__time__get_current_time" in tool_catalog(organization_id=org.pk)
    assert "mcp__time__get_current_time" not in tool_catalog(organization_id=other_org.pk)
    settings.AGENTRY_MCP_STDIO_SERVERS = []
    assert "1 switched off" in mcp_platform_servers_sync()
    assert "mcp__time__get_current_time" not in tool_catalog(organization_id=org.pk)


def _purge_broker() -> None:
    from redis import Redis

    Redis.from_url(settings.CELERY_BROKER_URL).delete("io", "default")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tool", "arguments", "idempotent"),
    [
        ("upsert_note", {"key": "k", "value": "v"}, True),
        ("append_entry", {"key": "k", "value": "v"}, False),
    ],
)
def test_a_worker_killed_mid_call(org, notes, mcp_fake, make_agent, providers_at_fake, tool, arguments, idempotent):
    """idempotentHint: the call runs again (same key in _meta) and the run completes;
    no hint: the run fails with ToolInterrupted and the tool ran once."""
    _purge_broker()
    env = {
        "OPENAI_BASE_URL": providers_at_fake.openai_base_url,
        "OPENAI_API_KEY": FAKE_API_KEY,
        "MEMORY_EXTRACTION_ENABLED": "0",
        "EXECUTION_LEASE_SECONDS": "2",
        "AGENTRY_SSRF_ALLOW": mcp_fake.allow_entry,
    }
    agent = make_agent(allowed_tools=["mcp__notes__*"])
    providers_at_fake.script(tool_call(f"mcp__notes__{tool}", arguments), text("Done."))
    mcp_fake.hold()  # the call reaches the server, which does not answer
    execution, _ = execution_start(agent=agent, organization=org, task="Write it down")
    with celery_worker(queues="io", concurrency=2, extra_env=env) as first:
        held = mcp_fake.wait_held(60)
        assert held, (
            "the worker never called the MCP server",
            list(
                Execution.objects.get(pk=execution.pk).steps.values_list(
                    "step_type", "status", "tool_output", "output_text"
                )
            ),
        )
        os.killpg(first.pid, signal.SIGKILL)  # main process and pool, mid-call
        first.wait()
    mcp_fake.release()
    with celery_worker(queues="io", concurrency=2, extra_env=env):

        def finished() -> bool:
            tick()  # beat's job: hand runs whose lease expired to a live worker
            return Execution.objects.get(pk=execution.pk).is_terminal

        wait_for(finished, 90, interval=1, message="the run to finish")
    execution.refresh_from_db()
    calls = mcp_fake.calls_of(tool)
    if idempotent:
        assert execution.status == "completed", (execution.error_code, execution.error)
        assert len(calls) == 2 and calls[0].meta[IDEMPOTENCY_META_KEY] == calls[1].meta[IDEMPOTENCY_META_KEY]
    else:
        assert (execution.status, execution.error_code) == ("failed", "ToolInterrupted")
        assert len(calls) == 1
    assert execution.retry_count >= 1


def test_a_run_does_not_wait_for_a_hung_server_beyond_the_tools_timeout(
    org, notes, mcp_fake, make_agent, providers_at_fake
):
    McpServer.objects.filter(pk=notes.pk).update(timeout_seconds=2)
    notes.tool_rows.update(timeout_seconds=2)
    agent = make_agent(allowed_tools=["mcp__notes__*"])
    providers_at_fake.script(tool_call("mcp__notes__slow", {"seconds": 30}), text("It timed out."))
    execution, _ = execution_start(agent=agent, organization=org, task="Be patient")
    started = time.monotonic()
    run_execution(execution.pk)
    assert time.monotonic() - started < 15
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    act = execution.steps.get(step_type="act")
    assert act.is_error and "did not answer in time" in json.dumps(act.tool_output) + act.output_text
