"""The gateway (DatabaseToolPort): what the model is offered, what it may call, the log."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.fakes.script import text, tool_call
from executions.runtime.loop import run_execution
from executions.runtime.tools_port import ToolContext, bound_tool_output
from executions.services import execution_start
from tools.gateway import DatabaseToolPort
from tools.models import Tool, ToolCall
from tools.view_cache import registry_changed

pytestmark = pytest.mark.django_db


def offered(env) -> list[str]:
    env.refresh()
    return [spec.name for spec in env.port.specs(context=env.context())]


def test_allowed_and_denied_patterns_with_deny_winning(tool_env):
    tool_env.config.update(allowed_tools=["email_*", "data_*", "wait"], denied_tools=["data_export"])
    tool_env.grant("send_emails")
    assert offered(tool_env) == ["data_aggregate", "data_query", "email_draft", "email_send", "wait"]
    for name in ("data_export", "web_scrape", "crm_get_contact"):
        outcome = tool_env.call(name, {"entity_type": "tasks"} if name.startswith("data") else {"url": "x"})
        assert outcome.status == "denied" and "not available" in outcome.error
    tool_env.config.update(allowed_tools=[], denied_tools=[])
    assert offered(tool_env) == []  # nothing is allowed unless a pattern allows it


def test_unknown_and_inactive_tools_are_refused(tool_env):
    outcome = tool_env.call("rm_rf", {})
    assert outcome.status == "denied"
    Tool.objects.filter(name="wait").update(is_active=False)
    registry_changed()  # an UPDATE sends no signal: whoever does one says so (tools.view_cache)
    tool_env.refresh()
    assert tool_env.call("wait", {"seconds": 1}).status == "denied"
    log = {c.tool_name: (c.status, c.tool_id) for c in ToolCall.objects.all()}
    assert log["rm_rf"] == ("denied", None)


def test_tools_needing_ungranted_capabilities_are_not_offered_and_are_denied(tool_env):
    assert "email_send" not in offered(tool_env) and "wait" in offered(tool_env)
    outcome = tool_env.call("email_send", {"to": ["a@example.test"], "subject": "s", "body": "b"})
    assert outcome.status == "denied"
    assert outcome.error == "Tool 'email_send' requires send_emails, which this agent has not been granted."
    call = ToolCall.objects.get(tool_name="email_send")
    assert call.status == "denied" and call.error_message == outcome.error and call.duration_ms == 0


def test_capabilities_are_per_organization(tool_env, other_org):
    from tools.models import AgentCapabilityGrant

    AgentCapabilityGrant.objects.create(organization=other_org, agent=tool_env.agent, capabilities=["send_emails"])
    assert "email_send" not in offered(tool_env)


def test_arguments_are_validated_before_any_call(tool_env, http_fake):
    tool_env.grant("access_web")
    for arguments in ({}, {"url": 42}, {"url": "http://x", "extra": 1}):
        outcome = tool_env.call("web_scrape", arguments)
        assert outcome.status == "failed" and outcome.error.startswith("Invalid arguments")
    assert http_fake.requests == []
    assert ToolCall.objects.filter(status="failed").count() == 3


def test_rate_limit_per_tool_and_agent(tool_env, settings):
    Tool.objects.filter(name="wait").update(rate_limit_per_minute=2)
    tool_env.refresh()
    results = [tool_env.call("wait", {"seconds": 1}).status for _ in range(3)]
    assert results == ["wait", "wait", "failed"]
    refused = ToolCall.objects.filter(status="failed").get()
    assert "Rate limit reached (wait: 2 per minute)" in refused.error_message
    # The overall limit per agent, whatever the tool: the two waits that ran count, the
    # refused one does not.
    settings.AGENTRY_AGENT_TOOL_CALLS_PER_MINUTE = 4
    statuses = [
        tool_env.call("email_draft", {"to": ["a@example.test"], "subject": "s", "body": "b"}).status for _ in range(3)
    ]
    assert statuses == ["completed", "completed", "failed"]
    assert (
        "all tools: 4 per minute"
        in ToolCall.objects.filter(tool_name="email_draft", status="failed").get().error_message
    )


def test_rate_limits_are_atomic_under_concurrency(settings):
    from types import SimpleNamespace

    from tools import ratelimit

    settings.AGENTRY_AGENT_TOOL_CALLS_PER_MINUTE = 0
    tool = SimpleNamespace(name="race_tool", rate_limit_per_minute=50, rate_limit_per_hour=60)
    windows = ratelimit.windows_for(tool=tool, agent_id="agent-race", config={})
    barrier = threading.Barrier(16)

    def attempt(_: int) -> bool:
        if _ < 16:
            barrier.wait()
        return ratelimit.take(windows) is None

    with ThreadPoolExecutor(16) as pool:
        granted = sum(pool.map(attempt, range(200)))
    assert granted == 50
    # A refused call used up nothing: the hour window counted exactly the 50 that passed.
    from redis import Redis

    hour = next(w for w in windows if w.seconds == 3600)
    assert int(Redis.from_url(settings.REDIS_URL).get(hour.key)) == 50


def test_results_are_bounded_before_the_model_sees_them(tool_env, settings):
    settings.AGENTRY_TOOL_RESULT_MAX_CHARS = 2000
    big = {"title": "t", "csv": "x" * 10_000}
    bounded = bound_tool_output(big)
    assert bounded["truncated"] is True and bounded["title"] == "t" and len(json.dumps(bounded)) <= 2000
    listing = bound_tool_output(list(range(5000)))
    assert listing["truncated"] is True and listing["original_chars"] > 2000


def test_every_call_is_logged_with_duration_and_status(tool_env, http_fake):
    http_fake.route("GET", "/slowish", text="<p>ok</p>", delay=0.2)
    tool_env.grant("access_web")
    tool_env.call("web_scrape", {"url": http_fake.url("/slowish")}, step_number=41)
    call = ToolCall.objects.get(step_number=41)
    assert call.status == "completed" and call.duration_ms >= 200 and call.completed_at >= call.started_at
    assert call.input_params == {"url": http_fake.url("/slowish")} and call.output_result["text"] == "ok"
    assert call.agent == tool_env.agent and call.execution_id == tool_env.execution.pk
    assert call.tool == Tool.objects.get(name="web_scrape")


def test_a_tool_that_outlives_its_timeout_fails(tool_env, http_fake):
    http_fake.route("GET", "/hang", text="late", delay=3)
    Tool.objects.filter(name="web_scrape").update(timeout_seconds=1)
    tool_env.grant("access_web")
    outcome = tool_env.call("web_scrape", {"url": http_fake.url("/hang")})
    assert outcome.status == "failed" and "time" in outcome.error
    assert ToolCall.objects.get(tool_name="web_scrape").duration_ms < 2500


def test_a_tool_error_is_told_without_leaking_internals(tool_env, monkeypatch):
    from tools import handlers

    def broken(call):
        raise RuntimeError("password=hunter2 at /srv/secret")

    monkeypatch.setitem(handlers.HANDLERS, "wait", broken)
    outcome = tool_env.call("wait", {"seconds": 1})
    assert outcome.status == "failed" and outcome.error == "The tool failed: RuntimeError."


def test_idempotency_flags(tool_env):
    def idempotent(name: str) -> bool:
        return tool_env.port.is_idempotent(context=tool_env.context(), name=name)

    assert idempotent("web_scrape") and idempotent("task_create")
    assert not idempotent("email_send") and not idempotent("no_such_tool")


def test_system_names_are_available_to_the_agents_app(org, synced_tools):
    from tools.selectors import tool_names_available

    names = tool_names_available(organization=org)
    assert {"email_send", "web_scrape", "wait", "crm_delete_contact"} <= set(names)


def test_sync_tools_is_idempotent_and_keeps_operators_choices(db):
    from io import StringIO

    from django.core.management import call_command

    from tools.builtins.definitions import BUILTIN_TOOLS

    out = StringIO()
    call_command("sync_tools", stdout=out)
    assert f"{len(BUILTIN_TOOLS)} created" in out.getvalue()
    Tool.objects.filter(name="web_search").update(is_active=False, description="edited")
    Tool.objects.create(
        name="retired_tool", display_name="Old", description="d", category="x", handler_type="internal", is_system=True
    )
    call_command("sync_tools", stdout=out)
    assert "0 created, 1 updated, 1 retired" in out.getvalue()
    web_search = Tool.objects.get(name="web_search")
    assert web_search.description != "edited" and web_search.is_active is False
    assert Tool.objects.get(name="retired_tool").is_active is False
    from config.platform_sync import SYNC_STEPS

    assert "tools.services.tools_sync" in SYNC_STEPS


# --- Through the runtime, with a model that asks for things ------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_model_is_told_when_a_tool_is_denied(org, make_agent, providers_at_fake, synced_tools):
    agent = make_agent(allowed_tools=["email_*", "wait"], denied_tools=["email_draft"])
    providers_at_fake.script(
        tool_call("email_send", {"to": ["x@example.test"], "subject": "s", "body": "b"}),
        tool_call("email_draft", {"to": ["x@example.test"], "subject": "s", "body": "b"}),
        tool_call("web_scrape", {"url": "http://169.254.169.254/"}),
        text("I could not do it."),
    )
    execution, _ = execution_start(agent=agent, organization=org, task="Email x")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed"
    first = providers_at_fake.chat_requests[0].body
    assert [t["function"]["name"] for t in first["tools"]] == ["wait"]  # nothing it cannot use
    told = [r.body["messages"][-1]["content"] for r in providers_at_fake.chat_requests[1:]]
    assert "requires send_emails" in told[0]
    assert "not available" in told[1] and "not available" in told[2]
    statuses = list(
        ToolCall.objects.filter(execution=execution).order_by("step_number").values_list("tool_name", "status")
    )
    assert statuses == [("email_send", "denied"), ("email_draft", "denied"), ("web_scrape", "denied")]


@pytest.mark.django_db(transaction=True)
def test_a_registry_tool_costs_one_statement_per_call(
    org, make_agent, providers_at_fake, synced_tools, echo_tool, settings
):
    """Against the same runs with an in-process tool (no registry row, no log): a registry
    tool adds its call-log statement and nothing per round for the gateway's lookups."""
    # The gateway re-reads grants every few seconds mid-run; counting needs one read per run.
    settings.AGENTRY_TOOL_VIEW_SECONDS = 3600
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tools.models import AgentCapabilityGrant

    def queries(tool: str, rounds: int) -> int:
        agent = make_agent(name=f"Counted {tool} {rounds}", allowed_tools=[tool], limits={"max_steps_per_run": 20})
        AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["create_tasks"])
        arguments = {"title": "t"} if tool == "task_create" else {"text": "t"}
        providers_at_fake.script(*[tool_call(tool, arguments) for _ in range(rounds)], text("done"))
        execution, _ = execution_start(agent=agent, organization=org, task="Go")
        with CaptureQueriesContext(connection) as captured:
            run_execution(execution.pk)
        return len(captured.captured_queries)

    def per_round(tool: str) -> float:
        two, four, six = (queries(tool, n) for n in (2, 4, 6))
        assert four - two == six - four, (tool, two, four, six)  # constant per round
        return (six - two) / 4

    queries("echo", 1)  # warm the per-process caches
    # task_create's own work: a lookup and an insert in a savepoint (4 statements).
    assert per_round("task_create") - per_round("echo") == 1 + 4


def test_a_stored_remote_reference_in_a_tool_schema_is_never_fetched(tool_env, schema_document):
    # H1 on the worker: a tool saved before schemas were checked.
    from tests.fakes.schema_canary import SCHEMA_SECRET

    Tool.objects.create(
        organization=tool_env.org, name="lookup", display_name="Lookup", description="d", category="custom",
        handler_type="http", handler_config={"url": "https://shop.example.test/x"},
        parameters_schema={"type": "object", "properties": {"id": {"$ref": schema_document.url("/secret")}}},
    )  # fmt: skip
    tool_env.refresh()
    outcome = tool_env.call("lookup", {"id": 1})
    assert outcome.status == "failed" and "only references within the schema" in outcome.error
    assert schema_document.requests == [] and SCHEMA_SECRET not in outcome.error


@pytest.mark.parametrize(
    "arguments",
    [
        {"to": ["a@example.test\r\nBcc: everyone@example.test"], "subject": "s", "body": "b"},
        {"to": ["a@example.test\n"], "subject": "s", "body": "b"},
        {"to": ["a@example.test\u0085"], "subject": "s", "body": "b"},
        {"to": ["a@example.test"], "subject": "Hello\r\nBcc: everyone@example.test", "body": "b"},
    ],
)
def test_header_injection_is_refused_before_an_approval_is_asked(tool_env, arguments):
    from approvals.models import ApprovalRequest

    tool_env.grant("send_emails")
    outcome = tool_env.call("email_send", arguments)
    assert outcome.status == "failed" and outcome.error.startswith("Invalid arguments"), outcome
    assert not ApprovalRequest.objects.exists()
    assert ToolCall.objects.get(tool_name="email_send").status == "failed"
    # The same call with a clean address is held for a person, as email_send always is.
    assert tool_env.call("email_send", {"to": ["a@example.test"], "subject": "s", "body": "b"}).status == (
        "needs_approval"
    )


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("email_draft", {"to": ["a@example.test\r\nBcc: b@example.test"], "subject": "s", "body": "b"}),
        ("crm_get_contact", {"email": "a@example.test\r\nX: y"}),
        ("crm_create_contact", {"email": "a@example.test\r\n"}),
        ("calendar_create_event", {"title": "t", "start_time": "2030-01-01T10:00:00Z",
                                   "end_time": "2030-01-01T11:00:00Z", "attendees": ["a@example.test\r\nX: y"]}),
        ("notify_user", {"message": "m", "user_id": "alice\r\nBcc: x@example.test"}),
        ("task_create", {"title": "t", "assigned_to": "alice\u0000"}),
        ("email_send", {"to": ["a\u0000@example.test"], "subject": "s", "body": "b"}),
    ],
)  # fmt: skip
def test_every_built_in_address_field_refuses_control_characters(tool_env, tool, arguments):
    from tools.builtins.definitions import BUILTIN_TOOLS
    from tools.gateway import validation_errors

    schema = next(t["parameters_schema"] for t in BUILTIN_TOOLS if t["name"] == tool)
    assert validation_errors(schema, arguments), (tool, arguments)


def test_the_built_in_schemas_pass_the_checks_tenants_schemas_do():
    from config.json_schema import schema_problems
    from tools.builtins.definitions import BUILTIN_TOOLS

    for tool in BUILTIN_TOOLS:
        assert schema_problems(tool["parameters_schema"]) == [], tool["name"]
        if tool["returns_schema"] is not None:
            assert schema_problems(tool["returns_schema"]) == [], tool["name"]


def _http_tool(organization, name: str, url: str, *, idempotent: bool) -> Tool:
    return Tool.objects.create(
        organization=organization,
        name=name,
        display_name=name,
        description="Sync the orders.",
        category="custom",
        parameters_schema={"type": "object", "properties": {}},
        handler_type="http",
        handler_config={"url": url, "method": "POST"},
        is_idempotent=idempotent,
    )


@pytest.mark.django_db(transaction=True)
def test_idempotency_is_read_from_the_organizations_own_tool(
    org, other_org, make_agent, providers_at_fake, synced_tools, http_fake
):
    """A crash mid-call is retried according to *this* organization's tool: another
    organization's tool of the same name changes nothing here (and is never looked at)."""
    from datetime import timedelta

    from django.utils import timezone

    from executions.models import Execution, ExecutionStep
    from executions.runtime.lease import claim
    from executions.runtime.loop import Runner

    http_fake.route("POST", "/sync", json={"synced": 3})
    _http_tool(org, "sync_orders", http_fake.url("/sync"), idempotent=True)
    _http_tool(other_org, "sync_orders", http_fake.url("/elsewhere"), idempotent=False)
    _http_tool(other_org, "only_theirs", http_fake.url("/elsewhere"), idempotent=True)
    agent = make_agent(allowed_tools=["sync_orders", "only_theirs"])
    providers_at_fake.script(tool_call("sync_orders", {}), text("Synced."))
    execution, _ = execution_start(agent=agent, organization=org, task="Sync")
    claim(execution.pk, "dead-worker")
    runner = Runner(Execution.objects.get(pk=execution.pk), "dead-worker")
    runner.start_or_resume()
    asked = runner.think().tool_calls[0]
    # The dead worker committed the act step and was killed while the call was in flight.
    ExecutionStep.objects.create(
        execution=execution, step_number=3, step_type="act", tool_name="sync_orders", tool_call_id=asked.id
    )
    Execution.objects.filter(pk=execution.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", (execution.error_code, execution.error)
    assert len(http_fake.requests_to("/sync")) == 1 and http_fake.requests_to("/elsewhere") == []
    # Seen from a run of this organization, the other organization's tools do not exist.
    port = DatabaseToolPort()
    context = ToolContext(execution=execution, config={}, step_number=9, idempotency_key=f"{execution.pk}:9")
    assert port.is_idempotent(context=context, name="sync_orders")
    assert not port.is_idempotent(context=context, name="only_theirs")
