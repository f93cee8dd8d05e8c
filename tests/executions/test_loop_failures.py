"""A Python exception inside a run's loop fails the run; it never leaves it running (security
issue #14, M3). A worker's death is still survived: the run resumes elsewhere (test_durability,
test_takeover), and a database outage is still retried (test_connection_release)."""

from __future__ import annotations

import time

import kombu.exceptions
import pytest
import redis.exceptions
from django.db import OperationalError

from bench.fakes.script import text
from executions.models import Execution
from executions.runtime import base
from executions.runtime import context as prompt_context
from executions.runtime import think as think_steps
from executions.runtime.loop import run_execution
from executions.services import execution_start
from executions.tasks import tick
from tests.fakes.http_fakes import FakeHttpServer
from tests.processes import celery_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def start(make_agent, org) -> Execution:
    agent = make_agent(limits={"max_runs_per_hour": 1000})
    return execution_start(agent=agent, organization=org, task="hello")[0]


def test_an_exception_before_the_model_call_fails_the_run(org, make_agent, providers_at_fake, monkeypatch):
    monkeypatch.setattr(prompt_context, "conversation", lambda **_: (_ for _ in ()).throw(RuntimeError("a bug")))
    execution = start(make_agent, org)

    assert run_execution(execution.pk) is None  # nothing escapes to the task

    execution.refresh_from_db()
    assert (execution.status, execution.error_code) == ("failed", "InternalError")
    assert "RuntimeError" in execution.error and execution.error_details == {"exception": "RuntimeError"}
    assert execution.lease_owner == "" and execution.lease_expires_at is None
    assert providers_at_fake.chat_requests == []
    assert execution.logs.filter(level="error", message__contains="RuntimeError").exists()


def test_an_exception_after_the_model_answered_fails_the_run_and_its_step(
    org, make_agent, providers_at_fake, monkeypatch
):
    def broken_cost(**_):
        raise ZeroDivisionError("a bug in pricing")

    monkeypatch.setattr(think_steps, "call_cost", broken_cost)
    providers_at_fake.script(text("an answer"))
    execution = start(make_agent, org)

    run_execution(execution.pk)

    execution.refresh_from_db()
    assert (execution.status, execution.error_code) == ("failed", "InternalError")
    think = execution.steps.get(step_type="think")
    assert think.status == "failed" and think.is_error and "ZeroDivisionError" in think.output_text
    assert execution.events.filter(event="execution_failed").exists()


def test_an_exception_while_the_run_is_set_up_fails_it(org, make_agent, providers_at_fake, monkeypatch):
    def broken(**_):
        raise KeyError("model_config")

    monkeypatch.setattr(base, "resolve_providers", broken)
    execution = start(make_agent, org)

    run_execution(execution.pk)

    execution.refresh_from_db()
    assert (execution.status, execution.error_code) == ("failed", "InternalError")


@pytest.mark.parametrize(
    "outage",
    [
        OperationalError("the database went away"),
        redis.exceptions.ConnectionError("Redis is restarting"),
        redis.exceptions.TimeoutError("Redis did not answer"),
        kombu.exceptions.OperationalError("the broker is away"),
    ],
    ids=type,
)
def test_an_outage_still_escapes_to_the_task_and_the_run_resumes_later(
    org, make_agent, providers_at_fake, monkeypatch, outage
):
    # Not a bug of the run: the task tries again shortly (the database), or the lease runs
    # out and the run resumes from its committed steps (Redis, the broker), as before.
    def down(**_):
        raise outage

    monkeypatch.setattr(prompt_context, "conversation", down)
    execution = start(make_agent, org)

    with pytest.raises(type(outage)):
        run_execution(execution.pk)

    assert Execution.objects.get(pk=execution.pk).status == "running"


def test_a_run_whose_lease_was_taken_is_not_failed_by_its_old_worker(org, make_agent, providers_at_fake, monkeypatch):
    # The exception surfaces in a worker that no longer holds the run: the new holder decides.
    # (The fault suite meets this for real: a takeover's resume deletes the started think step,
    # and the old worker's save of it raises DatabaseError "did not affect any rows".)
    def lose_then_fail(**_):
        Execution.objects.filter(pk=execution.pk).update(lease_owner="another:1:1:x")
        raise RuntimeError("late")

    monkeypatch.setattr(prompt_context, "conversation", lose_then_fail)
    execution = start(make_agent, org)

    run_execution(execution.pk)

    execution.refresh_from_db()
    assert (execution.status, execution.lease_owner) == ("running", "another:1:1:x")


@pytest.mark.slow
def test_in_a_worker_an_exception_ends_the_run_instead_of_a_takeover_every_lease(org, make_agent, providers_at_fake):
    env = {"AGENTRY_TOOL_PORT": "tests.tooling.BrokenToolPort", "EXECUTION_LEASE_SECONDS": "2"}
    execution = start(make_agent, org)
    with celery_worker(queues="io", concurrency=2, extra_env=env):  # takes the run queued at its start
        wait_for(lambda: Execution.objects.get(pk=execution.pk).is_terminal, 20, message="the run to end")
        time.sleep(3)  # longer than the lease: a run left running would be taken over now
        tick()
        time.sleep(1)
    execution.refresh_from_db()
    assert (execution.status, execution.error_code, execution.retry_count) == ("failed", "InternalError", 0)


@pytest.mark.slow
def test_in_a_worker_a_provider_answering_html_fails_the_run(org, make_agent, providers_at_fake):
    with FakeHttpServer() as page:
        page.route("POST", "/v1/chat/completions", text="<html><body>Sign in</body></html>")
        env = {"OPENAI_BASE_URL": page.base_url + "/v1", "OPENAI_API_KEY": "sk-test-123456"}
        execution = start(make_agent, org)
        with celery_worker(queues="io", concurrency=2, extra_env=env):  # takes the run queued at its start
            wait_for(lambda: Execution.objects.get(pk=execution.pk).is_terminal, 30, message="the run to end")
    execution.refresh_from_db()
    assert (execution.status, execution.error_code) == ("failed", "ExecutionFailed"), execution.error
    assert execution.error_details["provider_error"] == "LLMInvalidResponse" and execution.retry_count == 0
