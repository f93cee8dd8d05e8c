"""Entry points on the queues: take ids, call the runtime or a service, return quietly."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery import shared_task
from django.db import OperationalError, connection, transaction

logger = logging.getLogger(__name__)

RUN_TASK = "executions.run"


# The database unreachable or its pool exhausted (a restart, a worker host saturated): the
# run keeps its committed steps and is tried again shortly; the retry takes it over at once
# (owners.owner_is_gone: no thread of this process runs it any more).
DATABASE_RETRY_SECONDS = 2.0


@shared_task(name=RUN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_execution_task(execution_id: str) -> None:
    from executions.runtime.loop import run_execution  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    try:
        wait = run_execution(execution_id)
    except OperationalError as error:
        logger.warning("execution %s: database unavailable (%s); trying again shortly", execution_id, error)
        if not connection.in_atomic_block:  # a broken connection is not reused
            with contextlib.suppress(Exception):
                connection.close()
        run_execution_task.apply_async(args=[execution_id], queue="io", countdown=DATABASE_RETRY_SECONDS)
        return
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
    from executions.services import executions_due  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    count = 0
    for execution_id in executions_due():
        run_execution_task.apply_async(args=[str(execution_id)], queue="io")
        count += 1
    if count:
        logger.info("tick re-queued %d executions", count)
    return count


@shared_task(name="executions.guardians_scan", ignore_result=True)
def guardians_scan_task() -> int:
    """Beat job: guardian agents' monitoring rules (executions.guardian)."""
    from executions.guardian import guardians_scan  # noqa: PLC0415  (service imported in the Celery task body (styleguide))

    count = guardians_scan()
    if count:
        logger.info("guardians raised %d breach alert(s)", count)
    return count


@shared_task(name="billing.tasks.alerts_scan")
def alerts_scan_task() -> int:
    """Beat job: run-health alerts (its name from when billing ran it)."""
    from executions.alerts import alerts_scan  # noqa: PLC0415  (service imported in the Celery task body (styleguide))

    return alerts_scan()
