"""Celery configuration, a real worker, and the health endpoint around it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import ActivityLog
from config.celery import app
from tests.processes import celery_worker, wait_for


def test_celery_is_configured_for_durable_runs():
    conf = app.conf
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert set(conf.task_queues) == {"default", "io"}
    # Longer than the longest run, or Redis re-delivers a task still running (celery#2599).
    assert conf.broker_transport_options["visibility_timeout"] > settings.EXECUTION_MAX_SECONDS
    assert conf.beat_scheduler.startswith("django_celery_beat")
    schedule = conf.beat_schedule
    assert schedule and all("expires" in entry.get("options", {}) for entry in schedule.values())
    app.loader.import_default_modules()
    assert all(entry["task"] in app.tasks for entry in schedule.values())


def test_health_reports_redis_down_without_crashing(client, db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/api/v1/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True and body["database"]["vector"]
    assert body["redis"]["ok"] is False and body["redis"]["error"]
    assert body["workers"]["ok"] is False


def test_health_when_the_database_is_down(client, db, monkeypatch):
    from config.api import health

    def refuse():
        from django.db import OperationalError

        raise OperationalError("could not connect")

    monkeypatch.setattr(health, "_database", refuse)
    response = client.get("/api/v1/health/")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "ServiceUnavailable"
    assert error["details"]["database"]["ok"] is False


@pytest.mark.slow
def test_real_worker_heartbeat_and_task(transactional_db, client):
    before = client.get("/api/v1/health/").json()
    assert before["workers"]["count"] == 0 and before["status"] == "degraded"
    from tests.factories import OrganizationFactory

    org = OrganizationFactory()
    old = ActivityLog.objects.create(organization=org, action="old", created_at=timezone.now() - timedelta(days=400))
    fresh = ActivityLog.objects.create(organization=org, action="fresh")
    with celery_worker(queues="default", concurrency=2) as worker:
        health = client.get("/api/v1/health/").json()
        assert health["status"] == "ok"
        assert worker.worker_name in health["workers"]["names"]
        app.send_task("billing.tasks.prune_activity", queue="default")
        wait_for(lambda: not ActivityLog.objects.filter(pk=old.pk).exists(), 30, message="prune task")
        assert ActivityLog.objects.filter(pk=fresh.pk).exists()
    # A stopped worker removes its heartbeat.
    wait_for(lambda: client.get("/api/v1/health/").json()["workers"]["count"] == 0, 10, message="heartbeat removal")
