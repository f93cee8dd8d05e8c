"""``chains/{id}/suggestions/`` from the chain's own history and definition."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agents.models import ChainStepRun
from agents.services.chains import chain_create
from executions.chains.services import chain_execution_start
from tests.chains.conftest import run_to_end, step
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def test_slow_failing_and_unused_steps_are_suggested(
    org, alice, oscar, owner_actor, role_agent, client_for, providers_at_fake
):
    fetch, flaky, side, final = (
        role_agent("echo", name="Fetch"),
        role_agent("fail", name="Flaky"),
        role_agent("echo", name="Side"),
        role_agent("echo", name="Final"),
    )
    chain = chain_create(
        actor=owner_actor,
        data={
            "name": "Pipeline",
            "steps": [
                step(
                    "fetch",
                    fetch,
                    input_mapping={"task": "Fetch {{input.topic}}"},
                    output_mapping={"notes": "output.text"},
                ),
                step("flaky", flaky, input_mapping={"task": "Check"}, on_error="continue"),
                step("side", side, input_mapping={"task": "Side work"}),
                step("final", final, input_mapping={"task": "Write {{vars.notes}}"}),
            ],
            "error_handling": {"strategy": "continue"},
        },
    )
    for topic in ("a", "b", "c"):
        run = run_to_end(chain_execution_start(chain=chain, input={"topic": topic}, actor=owner_actor))
        assert run.status == "completed", (run.error, run.error_details)
    # The fetch step is the slow one: ten seconds of each run's step time.
    for attempt in ChainStepRun.objects.filter(step_id="fetch"):
        attempt.completed_at = attempt.started_at + timedelta(seconds=10)
        attempt.save(update_fields=["completed_at"])

    api = client_for(alice)
    body = api.get(f"/api/v1/chains/{chain.pk}/suggestions/").json()
    assert body["runs_analysed"] == 3
    assert body["steps"]["flaky"]["attempts"] == 3 and body["steps"]["flaky"]["failure_rate"] == 1.0
    found = {(s["kind"], s["step_id"]) for s in body["suggestions"]}
    assert found == {
        ("slow_step", "fetch"),
        ("failing_step", "flaky"),
        ("unused_output", "flaky"),
        ("unused_output", "side"),
    }
    slow = next(s for s in body["suggestions"] if s["kind"] == "slow_step")
    assert slow["evidence"]["avg_duration_ms"] >= 10_000

    assert_error(client_for(oscar).get(f"/api/v1/chains/{chain.pk}/suggestions/"), 404, "NotFound")


def test_a_chain_without_history_has_only_definition_suggestions(alice, owner_actor, role_agent, client_for):
    one, two = role_agent("echo", name="One"), role_agent("echo", name="Two")
    chain = chain_create(
        actor=owner_actor,
        data={
            "name": "Fresh",
            "steps": [step("one", one), step("two", two, input_mapping={"task": "{{steps.one.output.text}}"})],
        },
    )
    body = client_for(alice).get(f"/api/v1/chains/{chain.pk}/suggestions/").json()
    assert body == {"chain_id": str(chain.pk), "runs_analysed": 0, "steps": {}, "suggestions": []}
