"""Entry points on the queues: take ids, call the runtime or a service, return quietly."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import transaction

logger = logging.getLogger(__name__)

RUN_TASK = "executions.run"


@shared_task(name=RUN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_execution_task(execution_id: str) -> None:
    from executions.runtime.loop import run_execution

    wait = run_execution(execution_id)
    if wait is not None:
        # Another worker holds the lease: it is advancing the run, or it died and the lease
        # runs out. Look again then, instead of leaving a dead worker's run to the tick.
        run_execution_task.apply_async(args=[execution_id], queue="io", countdown=wait)


def enqueue_execution(execution_id: Any, *, countdown: float | None = None) -> None:
    """Queue a run once the surrounding transaction commits (at once outside one)."""

    def send() -> None:
        run_execution_task.apply_async(args=[str(execution_id)], queue="io", countdown=countdown)

    transaction.on_commit(send)


@shared_task(name="executions.tick", ignore_result=True)
def tick() -> int:
    """Hand back runs whose worker died (expired lease) and runs whose timer is due."""
    from executions.services import executions_due

    count = 0
    for execution_id in executions_due():
        run_execution_task.apply_async(args=[str(execution_id)], queue="io")
        count += 1
    if count:
        logger.info("tick re-queued %d executions", count)
    return count
