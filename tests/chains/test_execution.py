"""Running chains: mappings and conditions between steps, stop / continue / fallback on
failure, retries with backoff, step timeouts, cancel, the API — each step an agent run."""

from __future__ import annotations

import time

import pytest

from agents.models import ChainExecution, ChainStepRun
from agents.services.chains import chain_create
from config.celery import app
from executions.chains.services import chain_execution_cancel, chain_execution_start
from executions.chains.tasks import chain_advance_task, chains_tick
from executions.models import Execution
from tests.chains.conftest import run_to_end, step
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def _chain(owner_actor, steps, **fields):
    return chain_create(actor=owner_actor, data={"name": fields.pop("name", "Chain"), "steps": steps, **fields})


def _runs(chain_execution):
    return list(ChainStepRun.objects.filter(chain_execution=chain_execution).order_by("id"))


def test_outputs_flow_into_later_steps_and_conditions_skip(owner_actor, role_agent, providers_at_fake):
    researcher, writer, reviewer = (
        role_agent("echo", name="R"),
        role_agent("echo", name="W"),
        role_agent("echo", name="V"),
    )
    chain = _chain(owner_actor, [
        step("research", researcher, input_mapping={"task": "Find facts on {{input.topic}}", "depth": "input.depth"},
             output_mapping={"notes": "output.text"}),
        step("review", reviewer, condition="input.depth > 2", input_mapping={"task": "Review {{vars.notes}}"}),
        step("write", writer, input_mapping={"task": "Write using {{vars.notes}}", "prior": "steps.research.status"},
             output_mapping={"article": "output.text"}),
    ])  # fmt: skip
    run = run_to_end(chain_execution_start(chain=chain, input={"topic": "otters", "depth": 1}, actor=owner_actor))
    assert run.status == "completed", (run.error, run.error_details)
    assert run.vars == {
        "notes": "echo[Find facts on otters]",
        "article": "echo[Write using echo[Find facts on otters]]",
    }
    assert run.output == {"vars": run.vars, "result": {"text": "echo[Write using echo[Find facts on otters]]"}}
    steps = _runs(run)
    assert [(s.step_id, s.status) for s in steps] == [
        ("research", "completed"),
        ("review", "skipped"),
        ("write", "completed"),
    ]
    research, _, write = steps
    child = Execution.objects.get(pk=write.execution_id)
    assert child.trigger_type == "chain" and child.parent_id is None
    assert child.trigger_data["chain_execution_id"] == str(run.pk) and child.trigger_data["step_id"] == "write"
    assert child.input["context"] == {"prior": "completed"}
    assert Execution.objects.get(pk=research.execution_id).input["context"] == {"depth": 1}
    assert run.tokens_total == research.tokens + write.tokens > 0
    assert len(providers_at_fake.chat_requests) == 2  # the skipped step never reached the model


def test_a_failed_step_stops_the_chain_by_default(owner_actor, role_agent):
    good, bad, after = role_agent("echo", name="Good"), role_agent("fail", name="Bad"), role_agent("echo", name="After")
    chain = _chain(owner_actor, [step("first", good), step("broken", bad), step("never", after)])
    run = run_to_end(chain_execution_start(chain=chain, input={"task": "go"}, actor=owner_actor))
    assert run.status == "failed" and run.error_code == "ChainExecutionFailed" and run.failed_step == "broken"
    assert run.error_details["execution_id"] == str(_runs(run)[1].execution_id)
    assert [s.step_id for s in _runs(run)] == ["first", "broken"]
    assert not Execution.objects.filter(agent=after).exists()


def test_continue_goes_on_after_a_failure(owner_actor, role_agent):
    bad, after = role_agent("fail", name="Bad"), role_agent("echo", name="After")
    chain = _chain(owner_actor, [
        step("broken", bad, on_error="continue", output_mapping={"x": "output.text"}),
        step("next", after, input_mapping={"task": "Previous said {{vars.x}} ({{steps.broken.status}})"}),
    ])  # fmt: skip
    run = run_to_end(chain_execution_start(chain=chain, input={}, actor=owner_actor))
    assert run.status == "completed"
    assert [(s.step_id, s.status) for s in _runs(run)] == [("broken", "failed"), ("next", "completed")]
    assert run.vars == {} and run.output["result"] == {"text": "echo[Previous said  (failed)]"}


def test_a_fallback_step_runs_in_place_of_the_failed_one(owner_actor, role_agent, behaviours):
    primary, backup, last = (
        role_agent("fail", name="Primary"),
        role_agent("echo", name="Backup"),
        role_agent("echo", name="Last"),
    )
    chain = _chain(owner_actor, [
        step("primary", primary, on_error="fallback", fallback_step="backup", output_mapping={"answer": "output.text"}),
        step("backup", backup, input_mapping={"task": "Backup for {{input.q}}"}, output_mapping={"answer": "output.text"}),
        step("final", last, input_mapping={"task": "Final: {{vars.answer}}"}),
    ])  # fmt: skip
    run = run_to_end(chain_execution_start(chain=chain, input={"q": "why"}, actor=owner_actor))
    assert run.status == "completed"
    runs = _runs(run)
    assert [(s.step_id, s.status, s.fallback_for) for s in runs] == [
        ("primary", "failed", ""), ("backup", "completed", "primary"), ("final", "completed", ""),
    ]  # fmt: skip
    assert run.vars["answer"] == "echo[Backup for why]"

    # Without a failure the fallback never runs in the normal sequence.
    chain.steps[0]["agent_id"] = str(last.pk)
    chain.save(update_fields=["steps"])
    run = run_to_end(chain_execution_start(chain=chain, input={"q": "why"}, actor=owner_actor))
    assert [s.step_id for s in _runs(run)] == ["primary", "final"]


def test_retries_with_backoff_then_success(owner_actor, role_agent, behaviours):
    flaky = role_agent("flaky:2", name="Flaky")
    chain = _chain(
        owner_actor,
        [step("try", flaky)],
        retry_policy={"max_retries": 2, "backoff_seconds": 0.2, "backoff_multiplier": 2},
    )
    started = time.monotonic()
    run = run_to_end(chain_execution_start(chain=chain, input={"task": "again"}, actor=owner_actor))
    elapsed = time.monotonic() - started
    assert run.status == "completed"
    runs = _runs(run)
    assert [(s.attempt, s.status) for s in runs] == [(1, "failed"), (2, "failed"), (3, "completed")]
    assert len({s.execution_id for s in runs}) == 3  # each attempt is its own agent run
    assert elapsed >= 0.2 + 0.4  # the waits between attempts grew
    assert behaviours.calls["flaky:2"] == 3


def test_retries_run_out_then_error_handling_applies(owner_actor, role_agent):
    bad = role_agent("fail", name="Bad")
    chain = _chain(owner_actor, [step("try", bad)], retry_policy={"max_retries": 1, "backoff_seconds": 0})
    run = run_to_end(chain_execution_start(chain=chain, input={}, actor=owner_actor))
    assert run.status == "failed" and [s.attempt for s in _runs(run)] == [1, 2]


def test_a_step_past_its_timeout_fails_and_its_run_is_cancelled(owner_actor, role_agent, echo_tool):
    slow = role_agent("slowtool", name="Slow", allowed_tools=["echo"])
    late, after = role_agent("slow", name="Late"), role_agent("echo", name="After")
    chain = _chain(owner_actor, [
        step("slow", slow, timeout_seconds=1, on_error="continue"),
        step("late", late, timeout_seconds=1, on_error="continue"),
        step("after", after),
    ])  # fmt: skip
    run = run_to_end(chain_execution_start(chain=chain, input={}, actor=owner_actor))
    first, second, third = _runs(run)
    assert first.status == "timed_out" and first.error_code == "ExecutionTimeout"
    # Cancelled at the step boundary after the model call in flight: the tool never ran.
    assert Execution.objects.get(pk=first.execution_id).status == "cancelled" and echo_tool == []
    # A model call that outlived the timeout is late even though its run completed.
    assert second.status == "timed_out" and second.output is None
    assert third.status == "completed" and run.status == "completed"


def test_cancel(owner_actor, role_agent):
    chain = _chain(owner_actor, [step("one", role_agent("echo"))])
    pending = chain_execution_start(chain=chain, input={}, actor=owner_actor)
    cancelled = chain_execution_cancel(chain_execution=pending, actor=owner_actor)
    assert cancelled.status == "cancelled"
    run_to_end(pending)  # an advance that arrives later does nothing
    assert not ChainStepRun.objects.filter(chain_execution=pending).exists()
    from config.api.errors import ApiError

    with pytest.raises(ApiError) as caught:
        chain_execution_cancel(chain_execution=pending)
    assert caught.value.status_code == 409


def test_the_chain_api(org, alice, oscar, owner_actor, role_agent, client_for):
    chain = _chain(owner_actor, [step("one", role_agent("echo"), output_mapping={"said": "output.text"})])
    api = client_for(alice)
    response = api.post(
        f"/api/v1/chains/{chain.pk}/execute/", {"input": {"task": "Hi"}}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 202, response.content
    again = api.post(
        f"/api/v1/chains/{chain.pk}/execute/", {"input": {"task": "Hi"}}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert again.json()["id"] == response.json()["id"] and ChainExecution.objects.count() == 1
    run_to_end(response.json()["id"])
    detail = api.get(f"/api/v1/chain-executions/{response.json()['id']}/").json()
    assert detail["status"] == "completed" and detail["vars"] == {"said": "echo[Hi]"}
    [only] = detail["steps"]
    assert only["step_id"] == "one" and only["status"] == "completed" and only["execution_id"]
    assert api.get(f"/api/v1/executions/{only['execution_id']}/").json()["trigger_type"] == "chain"
    assert api.get("/api/v1/chain-executions/?status=completed").json()["total"] == 1
    assert_error(client_for(oscar).get(f"/api/v1/chain-executions/{detail['id']}/"), 404, "NotFound")
    assert_error(api.post(f"/api/v1/chain-executions/{detail['id']}/cancel/"), 409, "Conflict")
    assert_error(api.post(f"/api/v1/chains/{chain.pk}/execute/", {"input": [1]}, format="json"), 400, "InvalidInput")
    assert_error(api.post(f"/api/v1/chains/{chain.pk}/execute/", {"inputs": {}}, format="json"), 400, "InvalidInput")


def test_chain_tasks_keep_the_names_queued_messages_and_beat_use():
    # The tasks moved from agents.tasks to executions.chains.tasks; a message queued before a
    # deploy, and the beat entry, name them as before.
    # (shared_task hands out a proxy: the registered task runs the same function.)
    assert app.tasks["agents.chain_advance"].run is chain_advance_task.run
    assert app.tasks["agents.chains_tick"].run is chains_tick.run
    assert app.tasks["agents.chain_advance"].run.__module__ == "executions.chains.tasks"
    assert app.conf.beat_schedule["agents.chains-tick"]["task"] == "agents.chains_tick"
