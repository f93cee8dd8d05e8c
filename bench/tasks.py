"""Celery tasks of the benchmarks' baselines, imported by the workers through bench.settings.

- ``bench.noop``: the bare round trip (P2's baseline): count one and return.
- ``bench.sleep``: a task that only waits, as long as a run waits for its model (P3's
  baseline), counting how many are in flight.
- ``bench.cron_probe``: what beat fires for the cron figure (P6): notes when it started and
  starts a run of the bench agent with ``trigger_type`` schedule, as a cron trigger would.

Counters live in the bench's Redis database under the key the driver passes.

"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from celery import shared_task
from django.conf import settings
from redis import Redis

from agents.models import Agent
from executions.services import execution_start


@cache
def _redis() -> Any:
    # redis-py 8 caps a pool at 100 connections by default; P3's worker runs 600 threads.
    return Redis.from_url(settings.REDIS_URL, max_connections=4096)


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

    agent = Agent.objects.select_related("organization").get(pk=agent_id)
    execution, _ = execution_start(
        agent=agent,
        organization=agent.organization,
        task=f"Scheduled run {sample}",
        trigger_type="schedule",
        trigger_data={"bench_sample": sample},
    )
    _redis().hset(key, str(sample), f"{began}:{execution.pk}")
