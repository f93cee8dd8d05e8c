"""MCP servers as tool sources (issue #17), against a real MCP server built with the official
SDK (``tests/fakes/mcp_server.py``, streamable HTTP on 127.0.0.1): the sync, the gateway's
calls, pooled and re-opened sessions, failures as clear tool errors, results."""

from __future__ import annotations

import json
import logging

import pytest

from tools.mcp.client import mcp_pool
from tools.mcp.handler import IDEMPOTENCY_META_KEY
from tools.mcp.services import mcp_server_create, mcp_server_sync, mcp_sync_due
from tools.models import McpServer, McpServerStatus, Tool, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "Bearer mcp-s3cret-token-1234"


def create(actor, **data) -> McpServer:
    """Create, then sync at once (what a worker does right after the create's commit)."""
    return mcp_server_sync(server=mcp_server_create(actor=actor, data=data))


@pytest.fixture
def server(mcp_fake, owner_actor) -> McpServer:
    return create(owner_actor, name="notes", url=mcp_fake.url)


def test_sync_follows_pages_and_maps_annotations(server, mcp_fake):
    assert server.status == McpServerStatus.OK, server.last_error
    assert mcp_fake.list_requests == 4  # 12 tools, three to a page
    rows = {t.name: t for t in Tool.objects.filter(mcp_server=server)}
    assert set(rows) == {
        f"mcp__notes__{n}"
        for n in (
            "read_note", "upsert_note", "delete_note", "append_entry", "slow", "explode", "broken", "picture",
            "grow", "whoami",
        )
    }  # fmt: skip
    read, upsert, delete, append = (
        rows[f"mcp__notes__{n}"] for n in ("read_note", "upsert_note", "delete_note", "append_entry")
    )
    assert (read.is_idempotent, read.is_dangerous) == (True, False)
    assert (upsert.is_idempotent, upsert.is_dangerous) == (True, False)
    assert (delete.is_idempotent, delete.is_dangerous) == (False, True)
    assert (append.is_idempotent, append.is_dangerous) == (False, False)
    assert read.handler_type == "mcp" and read.organization_id == server.organization_id
    assert read.display_name == "Read a note"
    assert read.parameters_schema["required"] == ["key"]
    assert read.requires_permissions == []


def test_a_tool_the_platform_cannot_offer_is_listed_with_the_reason(server):
    by_name = {t["name"]: t for t in server.tools}
    assert len(by_name) == 12
    remote, dotted = by_name["remote_ref"], by_name["dotted.name"]
    assert remote["offered"] is False and "$ref" in remote["warning"]
    assert dotted["offered"] is False and "not a name model providers accept" in dotted["warning"]
    assert not Tool.objects.filter(name__in=["mcp__notes__remote_ref", "mcp__notes__dotted.name"]).exists()
    assert "2 of 12 tools are not offered" in server.last_error


def test_a_call_goes_through_the_gateway_with_the_idempotency_key(server, mcp_fake, tool_env):
    mcp_fake.notes["plan"] = "ship it"
    context = tool_env.context()
    outcome = tool_env.port.run(context=context, name="mcp__notes__read_note", arguments={"key": "plan"})
    assert outcome.status == "completed", outcome.error
    assert outcome.output["text"] == "ship it"
    assert outcome.output["structured_content"] == {"key": "plan", "value": "ship it"}
    assert outcome.output["untrusted_content"] is True
    (call,) = mcp_fake.calls_of("read_note")
    assert call.meta[IDEMPOTENCY_META_KEY] == context.idempotency_key
    logged = ToolCall.objects.get(idempotency_key=context.idempotency_key)
    assert logged.status == "completed" and logged.tool.mcp_server_id == server.pk


def test_sessions_are_pooled_across_calls(server, mcp_fake, tool_env):
    mcp_fake.methods.clear()
    for key in ("a", "b", "c"):
        assert tool_env.call("mcp__notes__upsert_note", {"key": key, "value": "v"}).status == "completed"
    # The sync's session serves the calls: no new handshake per call.
    assert mcp_fake.methods.count("initialize") == 0
    assert mcp_fake.methods.count("tools/call") == 3


def test_a_dropped_session_is_reopened_and_the_call_made_once(server, mcp_fake, tool_env):
    assert tool_env.call("mcp__notes__append_entry", {"key": "a", "value": "1"}).status == "completed"
    mcp_fake.restart()  # the server forgets every session
    outcome = tool_env.call("mcp__notes__append_entry", {"key": "b", "value": "2"})
    assert outcome.status == "completed", outcome.error
    # The server refused the old session before running anything: sent again once, run once.
    assert [c.arguments["key"] for c in mcp_fake.calls_of("append_entry")] == ["a", "b"]
    assert mcp_fake.methods.count("initialize") >= 2


def test_a_slow_tool_times_out_with_a_clear_error_and_the_session_lives_on(server, mcp_fake, tool_env):
    McpServer.objects.filter(pk=server.pk).update(timeout_seconds=1)
    Tool.objects.filter(mcp_server=server).update(timeout_seconds=1)
    tool_env.refresh()
    outcome = tool_env.call("mcp__notes__slow", {"seconds": 5})
    assert outcome.status == "failed"
    assert "did not answer in time" in outcome.error
    assert tool_env.call("mcp__notes__read_note", {"key": "x"}).status == "completed"


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ("mcp__notes__explode", "reported an error: the journal is on fire"),
        ("mcp__notes__broken", "answered with an error (-32603): the database is gone"),
    ],
)
def test_tool_and_protocol_errors_are_tool_errors(server, tool_env, tool, message):
    outcome = tool_env.call(tool, {})
    assert outcome.status == "failed"
    assert message in outcome.error
    assert ToolCall.objects.filter(tool_name=tool, status="failed").count() == 1


def test_an_unreachable_server_is_a_clear_tool_error(server, mcp_fake, tool_env):
    mcp_fake.stop()
    try:
        outcome = tool_env.call("mcp__notes__read_note", {"key": "x"})
    finally:
        mcp_fake.start()
    assert outcome.status == "failed"
    assert "MCP server 'notes'" in outcome.error


def test_images_are_recorded_by_reference_and_resources_bounded(server, tool_env):
    import base64

    from tests.fakes.mcp_server import PNG_1X1

    outcome = tool_env.call("mcp__notes__picture", {})
    assert outcome.status == "completed", outcome.error
    (image,) = outcome.output["media"]
    assert (
        image["kind"] == "image"
        and image["mime_type"] == "image/png"
        and image["size_bytes"] == len(base64.b64decode(PNG_1X1))
    )
    assert len(image["sha256"]) == 64
    (resource,) = outcome.output["resources"]
    assert resource["uri"] == "notes://report" and resource["truncated"] is True
    assert len(resource["text"]) == 4_000 and resource["original_chars"] == 50_000
    assert outcome.output["structured_content"] == {"rows": 3}
    logged = ToolCall.objects.get(tool_name="mcp__notes__picture")
    assert PNG_1X1 not in json.dumps(logged.output_result)


def test_list_changed_marks_the_server_and_the_beat_job_syncs_it(server, mcp_fake, tool_env):
    assert tool_env.call("mcp__notes__grow", {}).status == "completed"
    server.refresh_from_db()
    for _ in range(50):
        server.refresh_from_db()
        if server.sync_requested_at is not None:
            break
        import time

        time.sleep(0.1)
    assert server.sync_requested_at is not None
    mcp_sync_due()
    server.refresh_from_db()
    assert server.sync_requested_at is None
    assert Tool.objects.filter(mcp_server=server, name="mcp__notes__extra").exists()


def test_header_values_are_sent_and_never_come_back(mcp_fake, owner_actor, tool_env, caplog):
    mcp_fake.required_headers = {"Authorization": SECRET}
    caplog.set_level(logging.DEBUG)
    server = create(owner_actor, name="locked", url=mcp_fake.url, headers={"Authorization": SECRET})
    assert server.status == McpServerStatus.OK, server.last_error
    tool_env.refresh()
    outcome = tool_env.call("mcp__locked__whoami", {})
    assert outcome.status == "completed", outcome.error
    assert SECRET not in json.dumps(outcome.output)
    assert "[redacted" in outcome.output["text"].lower() or "redacted" in outcome.output["text"].lower()
    logged = ToolCall.objects.get(tool_name="mcp__locked__whoami")
    assert SECRET not in json.dumps([logged.input_params, logged.output_result, logged.error_message])
    # The test server runs in this process: its own loggers (which echo what it sent) aside.
    server_side = ("sse_starlette", "uvicorn", "mcp.server", "starlette")
    leaks = [
        f"{r.name}: {r.getMessage()[:200]}"
        for r in caplog.records
        if SECRET in f"{r.getMessage()} {r.__dict__}" and not r.name.startswith(server_side)
    ]
    assert leaks == []
    raw = McpServer.objects.filter(pk=server.pk).values_list("headers", flat=True).first()
    assert SECRET in raw  # decrypted by the field ...
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT headers FROM tools_mcpserver WHERE id = %s", [server.pk])
        assert SECRET not in cursor.fetchone()[0]  # ... and encrypted at rest


def test_a_wrong_credential_is_a_failed_sync_with_the_reason(mcp_fake, owner_actor):
    mcp_fake.required_headers = {"Authorization": SECRET}
    server = create(owner_actor, name="locked", url=mcp_fake.url, headers={"Authorization": "Bearer wrong"})
    assert server.status == McpServerStatus.ERROR
    assert "locked" in server.last_error and len(server.last_error) <= 500
    assert "wrong" not in server.last_error


def test_every_connection_passes_the_ssrf_guard(server, mcp_fake, settings, tool_env):
    settings.AGENTRY_SSRF_ALLOW = []
    mcp_pool().close_all()
    outcome = tool_env.call("mcp__notes__read_note", {"key": "x"})
    assert outcome.status == "failed"
    assert "may not be reached" in outcome.error and "loopback" in outcome.error
    synced = mcp_server_sync(server=server)
    assert synced.status == McpServerStatus.ERROR and "loopback" in synced.last_error


def test_a_2026_server_is_spoken_to_in_its_protocol(mcp_fake, owner_actor, tool_env):
    mcp_fake.legacy = False
    server = create(owner_actor, name="modern", url=mcp_fake.url)
    assert server.status == McpServerStatus.OK, server.last_error
    assert "server/discover" in mcp_fake.methods and "initialize" not in mcp_fake.methods
    tool_env.refresh()
    outcome = tool_env.call("mcp__modern__upsert_note", {"key": "k", "value": "v"})
    assert outcome.status == "completed", outcome.error
    assert mcp_fake.calls_of("upsert_note")[-1].meta[IDEMPOTENCY_META_KEY]
