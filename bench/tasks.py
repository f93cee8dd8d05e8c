"""Celery tasks of the benchmarks' baselines, imported by the workers through bench.settings.

- ``bench.noop``: the bare round trip (P2's baseline): count one and return.
- ``bench.sleep``: a task that only waits, as long as a run waits for its model (P3's
  baseline), counting how many are in flight.
- ``bench.cron_probe``: what beat fires for the cron figure (P6): notes when it started and
  starts a run of the bench agent with ``trigger_type`` schedule, as a cron trigger would.

Counters live in the bench's Redis database under the key the driver passes.

``BENCH_RELEASE_DB_DURING_MODEL_CALL=1`` (P3's ``--p3-release-db`` experiment only) makes the
worker return its database connection to the pool before each model call, by wrapping
``Runner.call_model`` in the worker process. It measures what such a change in the runtime
would buy; the shipped runtime holds the connection through the call.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from typing import Any

from celery import shared_task
from celery.signals import worker_init


@cache
def _redis() -> Any:
    from django.conf import settings
    from redis import Redis

    return Redis.from_url(settings.REDIS_URL)


@shared_task(name="bench.noop", ignore_result=True)
def noop(key: str) -> None:
    _redis().incr(key)


@shared_task(name="bench.sleep", ignore_result=True, acks_late=True)
def sleep(key: str, seconds: float) -> None:
    client = _redis()
    client.incr(f"{key}:started")
    time.sleep(seconds)
    client.incr(key)


@shared_task(name="bench.cron_probe", ignore_result=True)
def cron_probe(key: str, sample: int, agent_id: str) -> None:
    """Start the bench agent's run as a schedule trigger; note the time the task began."""
    began = time.time()
    from agents.models import Agent
    from executions.services import execution_start

    agent = Agent.objects.select_related("organization").get(pk=agent_id)
    execution, _ = execution_start(
        agent=agent,
        organization=agent.organization,
        task=f"Scheduled run {sample}",
        trigger_type="schedule",
        trigger_data={"bench_sample": sample},
    )
    _redis().hset(key, str(sample), f"{began}:{execution.pk}")


@worker_init.connect
def _release_db_during_model_calls(**kwargs: Any) -> None:
    import os

    if os.environ.get("BENCH_RELEASE_DB_DURING_MODEL_CALL") != "1":
        return
    from django.db import connection

    from executions.runtime import loop

    original = loop.Runner.call_model

    def call_model(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not connection.in_atomic_block:
            connection.close()  # with DB_POOL_MAX_SIZE: back to the pool until the next query
        return original(self, *args, **kwargs)

    loop.Runner.call_model = call_model
    logging.getLogger(__name__).warning("bench experiment: DB connection released during model calls")
