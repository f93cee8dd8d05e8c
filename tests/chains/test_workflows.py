"""The workflow-node contract, delegation and chains started by a run (the trigger_workflow
tool): child runs with their trigger type, parents' totals including their children's, the
depth limit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from agents.models import ChainExecution
from agents.services.chains import chain_create
from executions.models import Execution, TriggerAttempt
from executions.runtime.loop import run_execution
from executions.services import MAX_DEPTH, execution_start
from executions.workflows import execution_run_node, workflow_trigger
from tests.chains.conftest import run_to_end, step

pytestmark = pytest.mark.django_db(transaction=True)


def _parent(org, agent) -> Execution:
    parent, _ = execution_start(agent=agent, organization=org, task="Coordinate")
    run_execution(parent.pk)
    parent.refresh_from_db()
    assert parent.status == "completed" and parent.tokens_total > 0
    return parent


def test_run_node_returns_the_contract(org, role_agent):
    agent = role_agent("echo")
    result = execution_run_node(agent=agent, task=None, context={"task": "From the context", "n": 1}, parent=None)
    data = result.as_dict()
    assert set(data) >= {"execution_id", "status", "output", "tokens", "cost", "error"}
    assert (
        data["status"] == "success" and data["output"] == {"text": "echo[From the context]"} and data["error"] is None
    )
    run = Execution.objects.get(pk=data["execution_id"])
    assert run.input == {"task": "From the context", "context": {"n": 1}} and run.trigger_type == "chain"
    assert data["tokens"] == run.tokens_total > 0 and Decimal(data["cost"]) == run.cost


def test_run_node_errors_come_back_as_results(org, role_agent):
    failing = role_agent("fail")
    result = execution_run_node(agent=failing, task="Try", context={}, parent=None)
    assert result.status == "error" and result.execution_id and result.error_code == "ExecutionFailed"
    assert execution_run_node(agent=failing, task=None, context={}, parent=None).error_code == "InvalidInput"
    limited = role_agent("echo", name="Limited", limits={"max_runs_per_hour": 1})
    assert execution_run_node(agent=limited, task="one", context={}, parent=None).status == "success"
    refused = execution_run_node(agent=limited, task="two", context={}, parent=None)
    assert refused.status == "error" and refused.error_code == "ResourceExhausted" and refused.execution_id is None
    assert TriggerAttempt.objects.get(agent=limited).code == "ResourceExhausted"


def test_a_parent_counts_its_children_and_grandchildren(org, role_agent):
    boss, worker, helper = (
        role_agent("echo", name="Boss"),
        role_agent("echo", name="Worker"),
        role_agent("echo", name="Helper"),
    )
    parent = _parent(org, boss)
    own = (parent.tokens_total, parent.cost)
    child = execution_run_node(agent=worker, task="Do it", context={}, parent=parent)
    grandchild = execution_run_node(
        agent=helper, task="Help", context={}, parent=Execution.objects.get(pk=child.execution_id)
    )
    child_run = Execution.objects.get(pk=child.execution_id)
    grand_run = Execution.objects.get(pk=grandchild.execution_id)
    assert child_run.trigger_type == "delegation" and child_run.depth == 1 and grand_run.depth == 2
    parent.refresh_from_db()
    assert parent.tokens_total == own[0] + child.tokens + grandchild.tokens
    child_own_cost = sum(s.cost for s in child_run.steps.all())
    assert child_own_cost > 0 and parent.cost == own[1] + child_own_cost + grand_run.cost
    # The child's own total includes its child's, counted once.
    assert child_run.tokens_total == child.tokens + grandchild.tokens


def test_depth_is_limited(org, role_agent):
    agent = role_agent("echo")
    run = _parent(org, agent)
    for _ in range(MAX_DEPTH):
        result = execution_run_node(agent=agent, task="deeper", context={}, parent=run)
        assert result.status == "success"
        run = Execution.objects.get(pk=result.execution_id)
    refused = execution_run_node(agent=agent, task="too deep", context={}, parent=run)
    assert refused.status == "error" and "nest" in refused.error


def test_trigger_workflow_delegates_to_an_agent(org, role_agent):
    boss, worker = role_agent("echo", name="Boss"), role_agent("echo", name="Worker")
    parent = _parent(org, boss)
    started = workflow_trigger(execution=parent, workflow_id=f"agent:{worker.pk}", input_data={"task": "Report"},
                               idempotency_key=f"{parent.pk}:3", wait_seconds=0)  # fmt: skip
    assert started["status"] == "running" and started["agent"] == "Worker"  # no worker here: it waits in the queue
    child = Execution.objects.get(pk=started["execution_id"])
    assert child.trigger_type == "delegation" and child.parent_id == parent.pk
    assert child.trigger_data == {"parent_execution_id": str(parent.pk), "workflow_id": f"agent:{worker.pk}"}
    run_execution(child.pk)  # what the io worker does
    again = workflow_trigger(execution=parent, workflow_id=worker.slug, input_data={"task": "Report"},
                             idempotency_key=f"{parent.pk}:3", wait_seconds=5)  # fmt: skip
    assert again["execution_id"] == str(child.pk) and again["status"] == "success"  # the same call, the same child
    assert again["output"] == {"text": "echo[Report]"}


def test_trigger_workflow_starts_a_chain_as_a_child(org, owner_actor, role_agent):
    boss, first, second = (
        role_agent("echo", name="Boss"),
        role_agent("echo", name="One"),
        role_agent("echo", name="Two"),
    )
    chain = chain_create(actor=owner_actor, data={"name": "Pipeline", "steps": [
        step("one", first, input_mapping={"task": "Start {{input.topic}}"}, output_mapping={"a": "output.text"}),
        step("two", second, input_mapping={"task": "Then {{vars.a}}"}),
    ]})  # fmt: skip
    parent = _parent(org, boss)
    own = parent.tokens_total
    starter = import_string(settings.AGENTRY_CHAIN_STARTER)  # what the tools app calls
    started = starter(organization_id=org.pk, chain_id=str(chain.pk), input_data={"topic": "tides"},
                      parent_execution=parent, idempotency_key="tool:call-1")  # fmt: skip
    assert started["started"] is True and started["chain"] == "Pipeline"
    same = workflow_trigger(
        execution=parent, workflow_id="chain:Pipeline", input_data={"topic": "tides"}, idempotency_key="call-1"
    )
    assert same["chain_execution_id"] == started["chain_execution_id"]
    run = run_to_end(started["chain_execution_id"])
    assert run.status == "completed" and run.parent_execution_id == parent.pk
    children = Execution.objects.filter(parent=parent)
    assert children.count() == 2 and {c.trigger_type for c in children} == {"chain"}
    parent.refresh_from_db()
    assert parent.tokens_total == own + run.tokens_total


def test_a_chain_under_a_run_at_the_depth_limit_is_refused(org, owner_actor, role_agent):
    from config.api.errors import ApiError

    agent = role_agent("echo")
    chain = chain_create(actor=owner_actor, data={"name": "Deep", "steps": [step("one", agent)]})
    run = _parent(org, agent)
    Execution.objects.filter(pk=run.pk).update(depth=MAX_DEPTH)
    run.refresh_from_db()
    with pytest.raises(ApiError) as caught:
        workflow_trigger(execution=run, workflow_id=f"chain:{chain.pk}", input_data={}, idempotency_key="x")
    assert caught.value.code == "InvalidInput" and not ChainExecution.objects.exists()
    with pytest.raises(ApiError):
        workflow_trigger(execution=run, workflow_id="no-such-agent", input_data={}, idempotency_key="y")
