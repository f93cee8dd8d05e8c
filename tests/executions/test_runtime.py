"""The agent loop in-process (the task body), against the fake provider over HTTP."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from accounts.models import ActivityLog
from agents.models import Agent
from bench.fakes.script import error, text, tool_call
from billing.models import UsageRecord
from config.api.errors import ApiError
from executions.models import Execution, ExecutionEvent, ExecutionStep, PlatformEvent
from executions.runtime.loop import run_execution
from executions.services import execution_start

pytestmark = pytest.mark.django_db(transaction=True)


def start(agent, org, task="Say hi", **kw) -> Execution:
    execution, created = execution_start(agent=agent, organization=org, task=task, **kw)
    assert created
    return execution


def test_two_model_calls_and_one_tool_call(org, make_agent, providers_at_fake, echo_tool):
    fake = providers_at_fake
    agent = make_agent(allowed_tools=["echo"], personality="Cheerful and brief.")
    fake.script(tool_call("echo", {"text": "ping"}), text("All done: ping"))
    execution = start(agent, org, task="Echo ping please")
    run_execution(execution.pk)

    execution.refresh_from_db()
    assert execution.status == "completed", (execution.error, execution.error_details)
    assert execution.output == {"text": "All done: ping"}
    assert execution.llm_calls == 2 and execution.tool_calls == 1
    assert echo_tool == [{"text": "ping", "key": f"{execution.pk}:3"}]
    steps = list(execution.steps.values_list("step_type", "status"))
    assert steps == [("observe", "completed"), ("think", "completed"), ("act", "completed"), ("think", "completed")]
    act = execution.steps.get(step_type="act")
    assert act.tool_output == {"echo": "ping"} and act.tool_name == "echo"

    # What the SDK sent: the system prompt with personality and the tool, then the tool result.
    chats = fake.chat_requests
    assert len(chats) == 2
    system = chats[0].body["messages"][0]
    assert system["role"] == "system" and "Cheerful and brief." in system["content"]
    assert [t["function"]["name"] for t in chats[0].body["tools"]] == ["echo"]
    assert chats[1].body["messages"][-1]["role"] == "tool"
    assert '"echo": "ping"' in chats[1].body["messages"][-1]["content"]

    # Tokens and cost from the fake's usage, priced from the catalog (gpt-4o 2.50/10.00 per M).
    records = list(UsageRecord.objects.filter(execution=execution))
    assert len(records) == 2
    assert execution.tokens_input == sum(r.tokens_input for r in records) > 0
    assert execution.cost == sum((r.cost for r in records), Decimal(0)) > 0
    # Each call is priced and rounded to the micro-dollar on its own; the run is their sum.
    expected = sum(
        (
            (
                (Decimal(r.tokens_input) * Decimal("2.50") + Decimal(r.tokens_output) * Decimal("10.00")) / 1_000_000
            ).quantize(Decimal("0.000001"))
            for r in records
        ),
        Decimal(0),
    )
    assert execution.cost == expected

    agent.refresh_from_db()
    assert (agent.total_runs, agent.successful_runs, agent.failed_runs, agent.active_runs) == (1, 1, 0, 0)
    assert agent.total_tokens_used == execution.tokens_total and agent.total_cost == execution.cost
    assert agent.total_actions_taken == 1 and agent.avg_response_time_ms == execution.duration_ms

    events = list(ExecutionEvent.objects.filter(execution=execution).values_list("event", flat=True))
    assert events[0] == "execution_started" and events[-1] == "execution_completed"
    assert {"think_completed", "act_completed", "step_completed", "agent_finished"} <= set(events)
    platform = set(PlatformEvent.objects.filter(execution_id=execution.pk).values_list("event_type", flat=True))
    assert platform == {"ai.execution.started", "ai.execution.completed"}
    assert ActivityLog.objects.filter(target_id=str(execution.pk), action="execution.completed").exists()


def test_tool_outside_allowed_tools_is_never_called(org, make_agent, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["crm_*"])  # echo exists but is not allowed
    providers_at_fake.script(tool_call("echo", {"text": "sneaky"}), text("ok"))
    execution = start(agent, org)
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert echo_tool == []
    act = execution.steps.get(step_type="act")
    assert act.status == "failed" and "not available" in act.tool_output["error"]
    # The model was offered no tools at all and told the call was refused.
    first, second = providers_at_fake.chat_requests
    assert "tools" not in first.body
    assert "not available" in second.body["messages"][-1]["content"]
    assert execution.status == "completed" and execution.tool_calls == 0


def test_malformed_tool_arguments_are_told_to_the_model(org, make_agent, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"])
    providers_at_fake.script(
        tool_call("echo", '{"text": "unterminated'), tool_call("echo", {"text": "fixed"}), text("done")
    )
    execution = start(agent, org)
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed"
    assert echo_tool == [{"text": "fixed", "key": f"{execution.pk}:5"}]
    failed = execution.steps.filter(step_type="act", status="failed").get()
    assert "not valid JSON" in failed.tool_output["error"]


def test_arguments_not_matching_the_schema_are_refused(org, make_agent, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"])
    providers_at_fake.script(tool_call("echo", {"txt": 1}), text("gave up"))
    execution = start(agent, org)
    run_execution(execution.pk)
    assert echo_tool == []
    act = ExecutionStep.objects.get(execution=execution, step_type="act")
    assert "Invalid arguments" in act.tool_output["error"]


def test_max_steps_ends_the_run_failed(org, make_agent, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"], limits={"max_steps_per_run": 2})
    providers_at_fake.script(*[tool_call("echo", {"text": str(i)}) for i in range(5)])
    execution = start(agent, org)
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "failed" and execution.error_code == "MaxStepsExceeded"
    assert execution.llm_calls == 2 and len(echo_tool) == 2
    agent.refresh_from_db()
    assert agent.failed_runs == 1 and "max_steps_per_run" in agent.last_error


def test_max_tool_calls_per_step(org, make_agent, providers_at_fake, echo_tool):
    from bench.fakes.script import Reply

    agent = make_agent(allowed_tools=["echo"], limits={"max_tool_calls_per_step": 1})
    from bench.fakes.script import FakeToolCall

    many = Reply(tool_calls=[FakeToolCall(name="echo", arguments={"text": t}) for t in ("a", "b", "c")])
    providers_at_fake.script(many, text("done"))
    execution = start(agent, org)
    run_execution(execution.pk)
    assert [c["text"] for c in echo_tool] == ["a"]
    skipped = ExecutionStep.objects.filter(execution=execution, step_type="act", status="failed")
    assert skipped.count() == 2 and all("at most 1" in s.tool_output["error"] for s in skipped)


def test_provider_down_fails_clearly(org, make_agent, providers_at_fake):
    agent = make_agent()
    providers_at_fake.script(*[error(500) for _ in range(6)])
    execution = start(agent, org)
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "failed" and execution.error_code == "ExecutionFailed"
    assert execution.error and "sk-" not in execution.error
    assert PlatformEvent.objects.filter(execution_id=execution.pk, event_type="ai.execution.failed").exists()


def test_fallback_to_the_next_provider(org, make_agent, providers_at_fake):
    agent = make_agent(
        model_config={
            "provider": "openai",
            "model": "gpt-4o",
            "fallbacks": [{"provider": "anthropic", "model": "claude-sonnet-4-5"}],
        }
    )
    providers_at_fake.script(error(500), error(500), error(500), text("from claude"))
    execution = start(agent, org)
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed" and execution.output == {"text": "from claude"}
    think = execution.steps.get(step_type="think")
    assert think.provider == "anthropic"
    assert len(providers_at_fake.requests_to("/v1/messages")) == 1


def test_output_schema_is_enforced_with_one_correction(org, make_agent, providers_at_fake):
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
    agent = make_agent(output_schema=schema)
    providers_at_fake.script(text("I think 7"), text('```json\n{"score": 7}\n```'))
    execution = start(agent, org)
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed" and execution.output == {"score": 7}
    assert execution.steps.filter(step_type="reflect").count() == 1
    assert "JSON Schema" in providers_at_fake.chat_requests[1].body["messages"][-1]["content"]


def test_an_answer_still_off_the_schema_after_one_correction_fails_the_run(org, make_agent, providers_at_fake):
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
    agent = make_agent(output_schema=schema)
    providers_at_fake.script(text("I think 7"), text("Seven, really"), text('{"score": 7}'))
    execution = start(agent, org)
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "failed" and execution.error_code == "OutputSchemaMismatch"
    assert "after one correction" in execution.error
    assert execution.steps.filter(step_type="reflect").count() == 1
    assert len(providers_at_fake.chat_requests) == 2  # never asked a third time


def test_input_schema_is_enforced_before_anything_runs(org, make_agent):
    from config.api.errors import ApiError

    agent = make_agent(input_schema={"type": "object", "required": ["customer_id"]})
    with pytest.raises(ApiError) as excinfo:
        execution_start(agent=agent, organization=org, task="x", context={})
    assert excinfo.value.code == "InvalidInput"
    assert "context" in excinfo.value.details["validation_errors"]
    assert Execution.objects.count() == 0


def test_draft_and_archived_agents_do_not_run(org, owner_actor):
    from agents.services.agents import agent_create
    from config.api.errors import ApiError

    draft = agent_create(actor=owner_actor, data={"name": "Draft", "system_prompt": "x"})
    with pytest.raises(ApiError) as excinfo:
        execution_start(agent=draft, organization=org, task="x")
    assert excinfo.value.status_code == 409
    Agent.objects.filter(pk=draft.pk).update(status="archived")
    draft.refresh_from_db()
    with pytest.raises(ApiError):
        execution_start(agent=draft, organization=org, task="x")


def test_idempotency_key_returns_the_same_execution(org, make_agent):
    agent = make_agent()
    first, created = execution_start(agent=agent, organization=org, task="x", idempotency_key="k-1")
    again, created_again = execution_start(agent=agent, organization=org, task="x", idempotency_key="k-1")
    assert created and not created_again and again.pk == first.pk
    with pytest.raises(ApiError) as excinfo:  # the same key for another request (tests/executions/test_idempotency.py)
        execution_start(agent=agent, organization=org, task="other", idempotency_key="k-1")
    assert excinfo.value.code == "IdempotencyKeyMismatch"
    assert Execution.objects.count() == 1


def test_agent_hourly_limit(org, make_agent):
    from config.api.errors import ApiError

    agent = make_agent(limits={"max_runs_per_hour": 2})
    execution_start(agent=agent, organization=org, task="1")
    execution_start(agent=agent, organization=org, task="2")
    with pytest.raises(ApiError) as excinfo:
        execution_start(agent=agent, organization=org, task="3")
    assert excinfo.value.code == "ResourceExhausted" and excinfo.value.status_code == 429
    assert excinfo.value.details["resource_usage"]["max_runs_per_hour"] == 2


def test_timeout_is_checked_between_steps(org, make_agent, providers_at_fake, echo_tool):
    agent = make_agent(allowed_tools=["echo"], limits={"timeout_seconds": 1})
    providers_at_fake.script(tool_call("echo", {"text": "slow"}, delay_ms=1200), text("too late"))
    execution = start(agent, org)
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "timed_out" and execution.error_code == "ExecutionTimeout"
    agent.refresh_from_db()
    assert agent.failed_runs == 1  # timed out counts as failed


def _queries_for_run(org, make_agent, fake, tool_rounds: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    agent = make_agent(name=f"Counter {tool_rounds}", allowed_tools=["echo"], limits={"max_steps_per_run": 20})
    fake.script(*[tool_call("echo", {"text": str(i)}) for i in range(tool_rounds)], text("done"))
    execution = start(agent, org)
    with CaptureQueriesContext(connection) as captured:
        run_execution(execution.pk)
    assert Execution.objects.get(pk=execution.pk).status == "completed"
    return len(captured.captured_queries)


def test_queries_per_step_are_constant(org, make_agent, providers_at_fake, echo_tool, settings):
    # The tool gateway re-reads grants every few seconds mid-run; counting needs one read per run.
    settings.AGENTRY_TOOL_VIEW_SECONDS = 3600
    # A first run warms the per-process caches (model prices, plan) that later runs reuse.
    _warm, two, four, six = (_queries_for_run(org, make_agent, providers_at_fake, n) for n in (1, 2, 4, 6))
    assert four - two == six - four  # each think+act round costs the same number of queries
    per_round = (six - two) / 4
    # think (8): the step's insert before the call, then BEGIN, the step, the run's counters
    # with the lease and the step's log line (one UPDATE with a CTE), the usage record, the
    # day's and period's rollups (one statement), the events, COMMIT.
    # act (7): the step's insert before the call, then BEGIN, the step, the tool-call rollups,
    # the counters with the lease and the log line, the events, COMMIT.
    # (18 before: each log line, the day's rollup and a lease check were statements of their own.)
    assert per_round == 15, per_round
    # The rest of a two-round run: claim, reads of the run, its steps, memory and providers,
    # the tool view (this agent's first run: 4 reads), the first step's and the finishing
    # transactions, the after-commit hooks (a run without parent or chain: no query for those).
    assert two - 2 * per_round <= 70, two


def test_run_agent_command_prints_the_steps(org, make_agent, providers_at_fake, echo_tool):
    from io import StringIO

    from django.core.management import call_command

    agent = make_agent(allowed_tools=["echo"])
    providers_at_fake.script(tool_call("echo", {"text": "cli"}), text("printed"))
    out = StringIO()
    call_command("run_agent", str(agent.pk), "Echo cli", stdout=out)
    lines = out.getvalue()
    assert "-> calls echo" in lines and 'echo -> {"echo": "cli"}' in lines
    assert "think #4: printed" in lines and lines.strip().splitlines()[-1].startswith("completed:")


def test_admin_shows_the_trace(org, make_agent, providers_at_fake, echo_tool, client, django_user_model):
    agent = make_agent(allowed_tools=["echo"])
    providers_at_fake.script(tool_call("echo", {"text": "trace me"}), text("done"))
    execution = start(agent, org)
    run_execution(execution.pk)
    root = django_user_model.objects.create_superuser("root", "r@example.test", "pw")
    client.force_login(root)
    listing = client.get("/admin/executions/execution/?status=completed")
    assert listing.status_code == 200 and str(execution.pk) in listing.content.decode()
    page = client.get(f"/admin/executions/execution/{execution.pk}/change/").content.decode()
    assert "trace me" in page and "echo" in page and "think" in page


def test_output_schemas_and_local_tools_never_fetch_remote_references(schema_document):
    # H1 on the worker: an output_schema or a tool schema saved before schemas were checked.
    from executions.runtime.finish import output_problem
    from executions.runtime.tools_port import LocalTool, LocalToolPort, register_local_tool, unregister_local_tool
    from tests.fakes.schema_canary import SCHEMA_SECRET

    remote = {"type": "object", "properties": {"n": {"$ref": schema_document.url("/secret")}}}
    problem = output_problem('{"n": 1}', remote)
    assert problem is not None and "only references within the schema" in problem
    register_local_tool(LocalTool(name="remote_ref", handler=lambda **_: {}, description="d", parameters=remote))
    try:
        context = SimpleNamespace(config={"allowed_tools": ["remote_ref"], "denied_tools": []})
        outcome = LocalToolPort().check(context=context, name="remote_ref", arguments={"n": 1})
    finally:
        unregister_local_tool("remote_ref")
    assert outcome is not None and outcome.status == "failed" and "only references" in outcome.error
    assert schema_document.requests == [] and SCHEMA_SECRET not in problem + outcome.error


def _lease_writes(captured) -> list[str]:
    """The runtime's UPDATEs of the run that set its lease (the claim and the finish aside)."""
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith(("UPDATE executions_execution SET", "WITH step_logs"))
        and "lease_expires_at =" in q["sql"]
    ]


def test_the_lease_is_renewed_once_half_spent_not_at_every_step(
    org, make_agent, providers_at_fake, echo_tool, settings
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # A 90 s lease and a run of milliseconds: its steps' commits never rewrite the lease
    # (an indexed column: the UPDATE could not stay on its page), yet each still checks it.
    settings.EXECUTION_LEASE_SECONDS = 90
    agent = make_agent(allowed_tools=["echo"])
    providers_at_fake.script(tool_call("echo", {"text": "a"}), text("done"))
    execution = start(agent, org)
    with CaptureQueriesContext(connection) as captured:
        run_execution(execution.pk)
    assert Execution.objects.get(pk=execution.pk).status == "completed"
    bumps = [q["sql"] for q in captured.captured_queries if "RETURNING cancel_requested" in q["sql"]]
    assert len(bumps) == 4 and all("lease_owner =" in sql for sql in bumps)  # start, think, act, think
    assert _lease_writes(captured) == []

    # A 1 s lease and a model that takes 0.7 s: past half of it, the next commit renews it.
    settings.EXECUTION_LEASE_SECONDS = 1
    providers_at_fake.script(tool_call("echo", {"text": "b"}, delay_ms=700), text("done"))
    slow = start(agent, org)
    with CaptureQueriesContext(connection) as captured:
        run_execution(slow.pk)
    assert Execution.objects.get(pk=slow.pk).status == "completed"
    assert len(_lease_writes(captured)) >= 1
