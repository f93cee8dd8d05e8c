"""With real processes: beat (database scheduler) fires schedules into a worker; a beat
restarted after a hard kill does not run a tick twice; a worker retries a webhook delivery
against a local receiver until it succeeds."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from agents.services import agent_create
from executions.models import Execution, ScheduledExecution, WebhookDelivery
from executions.triggers.schedules import schedule_create
from executions.webhooks.services import webhook_endpoint_create
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.processes import celery_worker, wait_for
from tests.triggers.beat import celery_beat, kill_hard

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _overdue(schedule: ScheduledExecution, minutes: int = 2) -> None:
    """Time control: beat believes the last run was ``minutes`` ago, so the latest tick is due now
    (as after an outage) instead of up to a minute from now."""
    PeriodicTask.objects.filter(name=schedule.periodic_task_name).update(
        last_run_at=timezone.now() - timedelta(minutes=minutes)
    )


def _fires(schedule: ScheduledExecution) -> int:
    return ScheduledExecution.objects.get(pk=schedule.pk).fire_count


def test_beat_fires_schedules_and_a_restart_never_runs_a_tick_twice(owner_actor, active_agent, providers_at_fake):
    agent = active_agent()
    every_minute = schedule_create(
        actor=owner_actor, agent=agent, data={"cron_expression": "* * * * *", "input": {"task": "Minute report"}}
    )
    # Hourly at the current minute: both fires below name the same tick even if a minute
    # boundary passes during the test.
    hourly_cron = f"{timezone.now().minute} * * * *"
    hourly = schedule_create(
        actor=owner_actor, agent=agent, data={"cron_expression": hourly_cron, "input": {"task": "Hourly report"}}
    )
    _overdue(every_minute)
    _overdue(hourly)
    env = {"OPENAI_BASE_URL": providers_at_fake.openai_base_url, "OPENAI_API_KEY": "sk-fake"}
    with celery_worker(queues="default,io", concurrency=4, extra_env=env):
        with celery_beat() as beat:
            wait_for(
                lambda: _fires(every_minute) >= 1 and _fires(hourly) >= 1, 40, message=f"beat fires ({beat.log_path})"
            )
            wait_for(
                lambda: Execution.objects.filter(agent=agent, status="completed").count() >= 2,
                30,
                message="scheduled runs",
            )
            kill_hard(beat)
        # The killed beat's record of what it sent is lost: the hourly tick is due again.
        _overdue(hourly)
        with celery_beat() as beat:
            wait_for(lambda: _fires(hourly) >= 2, 40, message=f"beat fires again ({beat.log_path})")
        time.sleep(1.5)  # a second run, if one were started, would be there by now

    minute_runs = Execution.objects.filter(trigger_data__schedule_id=str(every_minute.pk))
    assert minute_runs.exists() and all(r.trigger_type == "schedule" for r in minute_runs)
    assert minute_runs.filter(status="completed").exists()
    # Every run of the per-minute schedule is its own minute.
    ticks = [r.trigger_data["scheduled_for"] for r in minute_runs]
    assert len(ticks) == len(set(ticks)) and all(t.endswith(":00+00:00") for t in ticks)

    hourly_runs = Execution.objects.filter(trigger_data__schedule_id=str(hourly.pk))
    assert _fires(hourly) >= 2 and hourly_runs.count() == 1
    run = hourly_runs.get()
    assert run.status == "completed" and run.input["task"] == "Hourly report"
    hourly.refresh_from_db()
    assert hourly.last_execution_id == run.pk and hourly.next_execution_at > timezone.now()


def test_a_worker_retries_a_delivery_until_the_receiver_takes_it(org):
    with WebhookReceiver(statuses=[500, 502]) as receiver:
        env = {"AGENTRY_SSRF_ALLOW": receiver.allow_entry, "AGENTRY_WEBHOOK_RETRY_DELAYS": "0.3,0.6"}
        from django.test import override_settings

        with override_settings(AGENTRY_SSRF_ALLOW=[receiver.allow_entry]):
            endpoint, secret = webhook_endpoint_create(actor=None, organization=org, data={"url": receiver.url})
        with celery_worker(queues="default", concurrency=2, extra_env=env):
            # Creating an agent emits ai.agent.created after the commit; the delivery is queued.
            agent_create(actor=None, organization=org, data={"name": "Announced", "system_prompt": "x"})
            delivery = WebhookDelivery.objects.get(endpoint=endpoint)
            wait_for(
                lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded",
                30,
                message="delivery succeeded",
            )
        delivery.refresh_from_db()
        assert delivery.attempts == 3 and [h["status_code"] for h in delivery.history] == [500, 502, 200]
        got = receiver.of_delivery(delivery.pk)
        assert [r.answered for r in got] == [500, 502, 200]
        assert all(r.signature_ok(secret) for r in got) and got[0].json["type"] == "ai.agent.created"
        # The waits grew between attempts (0.3 s, then 0.6 s, each with a little jitter).
        gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
        assert gaps[0] >= 0.28 and gaps[1] >= 0.58
