"""The Celery app: JSON only, late acks, one task at a time per worker slot, named queues.

Queues:
- ``io``: LLM-bound runs; run its workers with a threads or gevent pool (many in flight).
- ``default``: everything else (deliveries, rollups, maintenance).

The settings themselves (CELERY_* in config/settings/base.py) are read lazily from Django's
settings; nothing here may touch them at import time, because the settings package imports
this module through ``config/__init__.py``.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_postrun, task_prerun, worker_process_shutdown, worker_ready, worker_shutdown
from django.db import close_old_connections

from config.telemetry import flush
from config.workers import start_heartbeat, stop_heartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("agentry")
app.config_from_object("django.conf:settings", namespace="CELERY")


def beat_schedule() -> dict:
    """Every periodic job of the platform, declared here (synced into the database by beat)."""
    return {
        # Every 5 s: re-queue runs whose worker died (lease expired) and runs whose timer is due.
        "executions.tick": {
            "task": "executions.tick",
            "schedule": 5.0,
            "options": {"expires": 5},
        },
        # Every 5 minutes: failure-rate spikes per agent, runs stuck past their timeout.
        "billing.alerts-scan": {
            "task": "billing.tasks.alerts_scan",
            "schedule": 300.0,
            "options": {"expires": 300},
        },
        # Every minute: guardian agents' monitoring rules over the agents they watch; a breach
        # alerts once per rule and window (executions.guardian).
        "executions.guardians-scan": {
            "task": "executions.guardians_scan",
            "schedule": 60.0,
            "options": {"expires": 60},
        },
        # 03:41 UTC daily: consolidate near-duplicate memories, prune stale ones, drop expired ones.
        "memory.maintain": {
            "task": "memory.maintain",
            "schedule": crontab(minute=41, hour=3),
            "options": {"expires": 3600, "queue": "default"},
        },
        # Hourly at :23: delete conversations past their expiry.
        "memory.expire-conversations": {
            "task": "memory.expire_conversations",
            "schedule": crontab(minute=23),
            "options": {"expires": 1800, "queue": "default"},
        },
        # Every 10 minutes: embed memories stored without a vector (admin edits, embedder outages).
        "memory.embed-pending": {
            "task": "memory.embed_pending",
            "schedule": 600.0,
            "options": {"expires": 600, "queue": "default"},
        },
        # Every minute: expire approval requests past their time and cancel their runs.
        "approvals.expire": {
            "task": "approvals.expire",
            "schedule": 60.0,
            "options": {"expires": 60},
        },
        # Every 30 s: webhook deliveries that are due and not queued (retries far out, lost
        # messages, a worker that died mid-send).
        "executions.webhooks-retry-due": {
            "task": "executions.webhooks_retry_due",
            "schedule": 30.0,
            "options": {"expires": 30},
        },
        # Every 30 s: chain steps waiting past their timeout are cancelled; chains nobody
        # advances (lost message, dead worker, retry due) are queued again.
        "agents.chains-tick": {
            "task": "agents.chains_tick",
            "schedule": 30.0,
            "options": {"expires": 30},
        },
        # Every 15 minutes: each schedule's beat entry matches it; entries of deleted ones go.
        "executions.schedules-reconcile": {
            "task": "executions.schedules_reconcile",
            "schedule": 900.0,
            "options": {"expires": 900},
        },
        # 00:05 UTC daily: re-evaluate every agent's goals over their windows.
        "agents.evaluate-goals": {
            "task": "agents.tasks.evaluate_all_agent_goals",
            "schedule": crontab(minute=5, hour=0),
            "options": {"expires": 3600},
        },
        # Every minute: MCP servers whose tools changed (list_changed), new ones, and each one
        # again after AGENTRY_MCP_SYNC_SECONDS; the setting's platform stdio servers first.
        "tools.mcp-sync-due": {
            "task": "tools.mcp_sync_due",
            "schedule": 60.0,
            "options": {"expires": 60, "queue": "default"},
        },
        # 03:17 UTC daily: drop activity-log rows past the retention window.
        "billing.prune-activity": {
            "task": "billing.tasks.prune_activity",
            "schedule": crontab(minute=17, hour=3),
            "options": {"expires": 3600},
        },
    }


app.conf.beat_schedule = beat_schedule()
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _recycle_connections(task=None, **kwargs) -> None:
    """A task is a request: its connection is kept across tasks (Celery's Django fix-up would
    close it, CELERY_DB_REUSE_MAX), closed only when it broke or outlived CONN_MAX_AGE, and
    checked before reuse (CONN_HEALTH_CHECKS), as Django does around a web request. A new
    backend for every task was a quarter of a run's machine time (issue #16). With the pool
    on, "closing" hands the connection back to the pool. Eager tasks (tests) run inside their
    caller's transaction and are left alone."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


@worker_ready.connect
def _start_heartbeat(sender=None, **kwargs) -> None:
    start_heartbeat(getattr(sender, "hostname", None))


@worker_shutdown.connect
def _stop_heartbeat(**kwargs) -> None:
    stop_heartbeat()


@worker_shutdown.connect
@worker_process_shutdown.connect
def _flush_traces(**kwargs) -> None:
    # A prefork child leaves with os._exit (no atexit): send its buffered spans first.
    flush()
