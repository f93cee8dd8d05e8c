"""Schedules and their beat entries: create, change, pause, delete; agents' own
trigger_schedule; one run per tick on a controlled clock; refused ticks; API and admin."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from agents.models import AgentConfiguration
from agents.services import (
    agent_activate,
    agent_archive,
    agent_create,
    agent_deactivate,
    agent_publish,
    agent_update,
)
from executions.models import Execution, ScheduledExecution, TriggerAttempt
from executions.triggers.schedules import (
    TICK_EXPIRES_SECONDS,
    schedule_create,
    schedule_fire,
    schedules_reconcile,
)
from executions.triggers.tasks import sent_at_of
from tests.conftest import assert_error
from tests.factories import UserFactory

UTC = ZoneInfo("UTC")
INPUT = {"task": "Send the weekly digest", "context": {"list": "customers"}}


def _task(schedule: ScheduledExecution) -> PeriodicTask:
    return PeriodicTask.objects.get(name=f"agentry.schedule.{schedule.pk}")


def test_create_writes_the_beat_entry(alice, active_agent, client_for):
    agent = active_agent()
    body = {
        "agent_id": str(agent.pk),
        "cron_expression": "*/15 9-17 * * 1-5",
        "timezone": "Europe/Paris",
        "input": INPUT,
    }
    response = client_for(alice).post("/api/v1/schedules/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["source"] == "api" and data["enabled"] is True and data["is_active"] is True
    assert data["next_execution_at"] and data["input"] == INPUT
    assert "Monday through Friday" in data["description"]
    task = _task(ScheduledExecution.objects.get(pk=data["id"]))
    assert task.task == "executions.schedule_fire" and task.enabled and task.queue == "default"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("*/15", "9-17", "1-5")
    assert str(task.crontab.timezone) == "Europe/Paris"
    assert json.loads(task.kwargs) == {"schedule_id": data["id"], "expires_in": TICK_EXPIRES_SECONDS}
    assert task.expire_seconds == TICK_EXPIRES_SECONDS
    # The next time is the next 15-minute mark in Paris office hours, in the future.
    assert datetime.fromisoformat(data["next_execution_at"]) > timezone.now()


def test_pause_change_resume_delete_follow_in_beat(alice, active_agent, client_for):
    agent = active_agent()
    api = client_for(alice)
    created = api.post(
        "/api/v1/schedules/", {"agent_id": str(agent.pk), "cron_expression": "0 9 * * *", "input": INPUT}, format="json"
    ).json()
    url = f"/api/v1/schedules/{created['id']}/"
    schedule = ScheduledExecution.objects.get(pk=created["id"])

    paused = api.patch(url, {"is_active": False}, format="json").json()
    assert paused["is_active"] is False and paused["enabled"] is False and paused["next_execution_at"] is None
    assert _task(schedule).enabled is False

    before = timezone.now()
    changed = api.patch(
        url, {"is_active": True, "cron_expression": "30 6 * * 1", "timezone": "Asia/Tokyo"}, format="json"
    )
    assert changed.status_code == 200, changed.content
    task = _task(schedule)
    assert task.enabled and (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "6", "1")
    assert str(task.crontab.timezone) == "Asia/Tokyo"
    # A new expression starts from now: no catch-up fire for a tick that lies in the past.
    assert task.last_run_at >= before
    next_at = datetime.fromisoformat(changed.json()["next_execution_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert (next_at.weekday(), next_at.hour, next_at.minute) == (0, 6, 30)

    assert api.delete(url).status_code == 204
    assert not ScheduledExecution.objects.filter(pk=schedule.pk).exists()
    assert not PeriodicTask.objects.filter(name=f"agentry.schedule.{schedule.pk}").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron_expression": "61 * * * *"}, "cron_expression"),
        ({"cron_expression": "0 0 L * *"}, "cron_expression"),
        ({"cron_expression": "0 0 31 2 *"}, "cron_expression"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"input": {"task": ""}}, "input.task"),
        ({"input": {"task": "x", "context": []}}, "input.context"),
        ({"input": {"task": "x", "context": {"n": "nine"}}}, "input.context"),
        ({"is_active": "yes"}, "is_active"),
        ({"every": "day"}, "every"),
    ],
)
def test_bad_schedules_are_refused_and_nothing_is_saved(alice, active_agent, client_for, body, field):
    agent = active_agent(input_schema={"type": "object", "properties": {"n": {"type": "integer"}}})
    data = {"agent_id": str(agent.pk), "cron_expression": "0 9 * * *", "input": {"task": "x"}, **body}
    error = assert_error(client_for(alice).post("/api/v1/schedules/", data, format="json"), 400, "InvalidInput")
    assert field in error["details"]["validation_errors"]
    assert (
        not ScheduledExecution.objects.exists()
        and not PeriodicTask.objects.filter(name__startswith="agentry.").exists()
    )


def test_a_stored_remote_reference_is_never_fetched_for_a_schedules_input(
    alice, active_agent, client_for, schema_document
):
    from agents.models import AgentVersion

    agent = active_agent()
    version = AgentVersion.objects.get(pk=agent.current_version_id)
    schema = {"type": "object", "properties": {"n": {"$ref": schema_document.url("/secret")}}}
    AgentVersion.objects.filter(pk=version.pk).update(config={**version.config, "input_schema": schema})
    data = {"agent_id": str(agent.pk), "cron_expression": "0 9 * * *", "input": {"task": "x", "context": {"n": 1}}}
    response = client_for(alice).post("/api/v1/schedules/", data, format="json")
    error = assert_error(response, 400, "InvalidInput")
    assert "only references within the schema" in error["details"]["validation_errors"]["input.context"][0]
    assert schema_document.requests == [] and not ScheduledExecution.objects.exists()


def test_tenancy_and_roles(org, alice, mia, vic, oscar, owner_actor, active_agent, client_for):
    agent = active_agent()
    private = active_agent(name="Private", visibility="private")
    schedule = schedule_create(actor=owner_actor, agent=agent, data={"cron_expression": "0 9 * * *", "input": INPUT})
    url = f"/api/v1/schedules/{schedule.pk}/"
    other = client_for(oscar)
    assert_error(other.get(url), 404, "NotFound")
    assert_error(other.patch(url, {"is_active": False}, format="json"), 404, "NotFound")
    assert_error(other.delete(url), 404, "NotFound")
    assert other.get("/api/v1/schedules/").json()["total"] == 0
    assert_error(
        other.post(
            "/api/v1/schedules/",
            {"agent_id": str(agent.pk), "cron_expression": "* * * * *", "input": INPUT},
            format="json",
        ),
        404,
        "AgentNotFound",
    )
    body = {"agent_id": str(agent.pk), "cron_expression": "0 10 * * *", "input": INPUT}
    assert_error(client_for(vic).post("/api/v1/schedules/", body, format="json"), 403, "InsufficientPermissions")
    assert client_for(vic).get(url).status_code == 200  # viewers read
    assert client_for(mia).post("/api/v1/schedules/", body, format="json").status_code == 201
    body["agent_id"] = str(private.pk)
    assert_error(client_for(mia).post("/api/v1/schedules/", body, format="json"), 404, "AgentNotFound")
    assert_error(
        client_for(alice, scopes=["agents:read"]).post("/api/v1/schedules/", body, format="json"),
        403,
        "AgentAccessDenied",
    )


def test_agent_trigger_schedule_follows_the_agent(
    owner_actor, make_agent, django_capture_on_commit_callbacks, client_for, alice
):
    with django_capture_on_commit_callbacks(execute=True):
        agent = make_agent(trigger_schedule="0 9 * * 1-5", trigger_timezone="Europe/Paris")
    schedule = ScheduledExecution.objects.get(agent=agent, source="agent")
    assert (schedule.cron_expression, schedule.timezone) == ("0 9 * * 1-5", "Europe/Paris")
    assert _task(schedule).enabled is False  # published but not active: triggers off

    with django_capture_on_commit_callbacks(execute=True):
        agent_activate(actor=owner_actor, agent=agent)
    assert _task(schedule).enabled is True
    schedule.refresh_from_db()
    assert schedule.next_execution_at is not None

    # Editing the draft changes nothing until it is published.
    with django_capture_on_commit_callbacks(execute=True):
        agent_update(actor=owner_actor, agent=agent, data={"trigger_schedule": "15 7 * * *", "trigger_timezone": "UTC"})
    assert ScheduledExecution.objects.get(pk=schedule.pk).cron_expression == "0 9 * * 1-5"
    with django_capture_on_commit_callbacks(execute=True):
        agent_publish(actor=owner_actor, agent=agent)
    task = _task(schedule)
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("15", "7", "UTC")

    # Managed by the agent: the schedules API refuses to change it.
    url = f"/api/v1/schedules/{schedule.pk}/"
    assert_error(client_for(alice).patch(url, {"is_active": False}, format="json"), 409, "Conflict")
    assert_error(client_for(alice).delete(url), 409, "Conflict")

    with django_capture_on_commit_callbacks(execute=True):
        agent_deactivate(actor=owner_actor, agent=agent)
    assert _task(schedule).enabled is False
    with django_capture_on_commit_callbacks(execute=True):
        agent_activate(actor=owner_actor, agent=agent)
        agent_update(actor=owner_actor, agent=agent, data={"trigger_schedule": ""})
        agent_publish(actor=owner_actor, agent=agent)
    assert not ScheduledExecution.objects.filter(agent=agent).exists()
    assert not PeriodicTask.objects.filter(name=f"agentry.schedule.{schedule.pk}").exists()


def test_archiving_removes_agent_schedules_and_disables_the_others(
    owner_actor, make_agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        agent = make_agent(trigger_schedule="*/5 * * * *")
        agent_activate(actor=owner_actor, agent=agent)
    own = schedule_create(actor=owner_actor, agent=agent, data={"cron_expression": "0 9 * * *", "input": INPUT})
    assert _task(own).enabled
    with django_capture_on_commit_callbacks(execute=True):
        agent_archive(actor=owner_actor, agent=agent)
    assert not ScheduledExecution.objects.filter(agent=agent, source="agent").exists()
    assert _task(own).enabled is False


def test_platform_agent_schedules_per_organization(
    org, other_org, alice, owner_actor, django_capture_on_commit_callbacks
):
    from agents.services import agent_configuration_set

    with django_capture_on_commit_callbacks(execute=True):
        platform = agent_create(actor=None, organization=None, data={"name": "Digest", "system_prompt": "Digest."})
        agent_publish(actor=None, agent=platform)
        agent_activate(actor=None, agent=platform)
    platform.refresh_from_db()
    assert not ScheduledExecution.objects.filter(agent=platform).exists()  # nobody switched it on
    with django_capture_on_commit_callbacks(execute=True):
        agent_configuration_set(actor=owner_actor, agent=platform, overrides={"trigger_schedule": "0 6 * * *"})
    rows = ScheduledExecution.objects.filter(agent=platform)
    assert [(r.organization_id, r.cron_expression) for r in rows] == [(org.pk, "0 6 * * *")]
    assert _task(rows[0]).enabled
    with django_capture_on_commit_callbacks(execute=True):
        AgentConfiguration.objects.filter(organization=org, agent=platform).update(is_active=False)
        AgentConfiguration.objects.get(organization=org, agent=platform).save()
    assert not ScheduledExecution.objects.filter(agent=platform).exists()


def test_one_run_per_tick_on_a_controlled_clock(org, owner_actor, active_agent):
    agent = active_agent()
    schedule = schedule_create(actor=owner_actor, agent=agent, data={"cron_expression": "0 * * * *", "input": INPUT})
    tick = datetime(2030, 5, 6, 14, 0, tzinfo=UTC)
    first = schedule_fire(schedule_id=schedule.pk, sent_at=tick + timedelta(seconds=1))
    # Beat restarted before it recorded the send and sends the same tick again, a little later.
    again = schedule_fire(schedule_id=schedule.pk, sent_at=tick + timedelta(seconds=7))
    assert first is not None and again is None
    runs = Execution.objects.filter(agent=agent)
    assert runs.count() == 1
    run = runs.get()
    assert run.trigger_type == "schedule" and run.input == INPUT
    assert run.trigger_data["scheduled_for"] == tick.isoformat() and run.trigger_data["schedule_id"] == str(schedule.pk)
    second = schedule_fire(schedule_id=schedule.pk, sent_at=tick + timedelta(hours=1, seconds=2))
    assert second is not None and runs.count() == 2
    schedule.refresh_from_db()
    assert schedule.fire_count == 3 and schedule.last_execution_id == second.pk
    assert schedule.next_execution_at > timezone.now()


def test_the_tick_is_named_by_beat_send_time():
    sent = datetime(2030, 1, 1, 8, 0, 1, tzinfo=UTC)
    request = SimpleNamespace(expires=(sent + timedelta(seconds=300)).isoformat())
    assert sent_at_of(request, 300) == sent
    assert sent_at_of(SimpleNamespace(expires=None), 300) is None
    assert sent_at_of(SimpleNamespace(), None) is None


def test_a_tick_over_the_limit_is_recorded_not_run(org, owner_actor, active_agent):
    agent = active_agent(limits={"max_runs_per_hour": 1})
    schedule = schedule_create(actor=owner_actor, agent=agent, data={"cron_expression": "*/5 * * * *", "input": INPUT})
    now = timezone.now()
    assert schedule_fire(schedule_id=schedule.pk, sent_at=now - timedelta(minutes=10)) is not None
    assert schedule_fire(schedule_id=schedule.pk, sent_at=now - timedelta(minutes=5)) is None
    assert Execution.objects.filter(agent=agent).count() == 1
    attempt = TriggerAttempt.objects.get(agent=agent)
    assert attempt.trigger_type == "schedule" and attempt.code == "ResourceExhausted"
    assert attempt.trigger_data["schedule_id"] == str(schedule.pk)


def test_paused_or_deleted_schedules_never_run(org, owner_actor, active_agent):
    from executions.triggers.schedules import schedule_update

    agent = active_agent()
    schedule = schedule_create(actor=owner_actor, agent=agent, data={"cron_expression": "* * * * *", "input": INPUT})
    schedule_update(actor=owner_actor, schedule=schedule, data={"is_active": False})
    assert schedule_fire(schedule_id=schedule.pk, sent_at=timezone.now()) is None
    assert schedule_fire(schedule_id="00000000-0000-0000-0000-000000000000") is None
    assert not Execution.objects.exists()


def test_reconcile_repairs_drift_and_removes_orphans(org, owner_actor, active_agent):
    agent = active_agent()
    schedule = schedule_create(actor=owner_actor, agent=agent, data={"cron_expression": "0 9 * * *", "input": INPUT})
    PeriodicTask.objects.filter(name=f"agentry.schedule.{schedule.pk}").update(enabled=False)
    orphan = PeriodicTask.objects.create(name="agentry.schedule.gone", task="executions.schedule_fire", interval=None,
                                         crontab=_task(schedule).crontab)  # fmt: skip
    schedules_reconcile()
    assert _task(schedule).enabled is True
    assert not PeriodicTask.objects.filter(pk=orphan.pk).exists()


def test_admin_lists_next_execution_and_saves_through_the_services(org, owner_actor, active_agent):
    agent = active_agent()
    schedule_create(actor=owner_actor, agent=agent, data={"cron_expression": "0 9 * * *", "input": INPUT})
    root = UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    page = client.get("/admin/executions/scheduledexecution/")
    assert page.status_code == 200
    assert b"next execution at" in page.content.lower() and b"0 9 * * *" in page.content
    form = {
        "organization": str(org.pk),
        "agent": str(agent.pk),
        "cron_expression": "61 * * * *",
        "timezone": "UTC",
        "input": json.dumps(INPUT),
        "is_active": "on",
    }
    refused = client.post("/admin/executions/scheduledexecution/add/", form)
    assert refused.status_code == 200 and b"not a valid 5-field cron" in refused.content
    assert ScheduledExecution.objects.count() == 1
    form["cron_expression"] = "*/10 * * * *"
    added = client.post("/admin/executions/scheduledexecution/add/", form)
    assert added.status_code == 302, added.content[:2000]
    made = ScheduledExecution.objects.get(cron_expression="*/10 * * * *")
    assert _task(made).enabled and made.created_by == root
