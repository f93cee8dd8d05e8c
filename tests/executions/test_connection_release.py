"""A worker with psycopg's pool keeps more runs in flight than it has connections.

The runtime hands its connection back to the pool while it waits for the model
(``executions.runtime.lease.release_connection_during_wait``): six runs on a worker whose
pool holds two connections must all be waiting for the model at once. Were the connection
held through the call, only two model requests could be open while the model takes five
seconds to answer.
"""

from __future__ import annotations

import time

import pytest

from executions.models import Execution
from executions.services import execution_start
from tests.fakes.fixtures import worker_env_for
from tests.processes import celery_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

RUNS = 6
LATENCY_MS = 5000


def test_runs_in_flight_exceed_the_pool_size(org, make_agent, providers_at_fake):
    fake = providers_at_fake
    fake.latency_ms = LATENCY_MS
    env = worker_env_for(fake, DB_POOL_MAX_SIZE="2")
    agent = make_agent(limits={"max_runs_per_hour": 1000})
    executions = [execution_start(agent=agent, organization=org, task=f"job {i}")[0] for i in range(RUNS)]
    with celery_worker(queues="io", concurrency=RUNS, extra_env=env):
        wait_for(lambda: len(fake.chat_requests) >= 1, 30, message="the first model call")
        first = time.monotonic()
        # Every run's first call opens before the first one is answered.
        wait_for(
            lambda: len(fake.chat_requests) >= RUNS,
            (LATENCY_MS / 1000) * 0.8,
            message=f"{RUNS} model calls open at once on a pool of 2",
        )
        assert time.monotonic() - first < LATENCY_MS / 1000
        fake.latency_ms = 0
        wait_for(
            lambda: all(Execution.objects.get(pk=e.pk).is_terminal for e in executions), 60, message="runs finished"
        )
    assert {Execution.objects.get(pk=e.pk).status for e in executions} == {"completed"}


THREADS = 4
POOL = 2
BACKLOG = 12  # three tasks per thread: each thread's connection must go back between its tasks


def test_threads_reused_across_tasks_hand_their_connection_back(org, make_agent, providers_at_fake):
    """More runs than threads, more threads than pooled connections (bench P3's shape, issue
    #16): every run completes, and quickly. A thread that kept its pooled connection once its
    task ended (a worker keeps connections across tasks: CELERY_DB_REUSE_MAX, the recycling
    in config/celery.py) would leave the other threads waiting DB_POOL_TIMEOUT for one that
    never comes back: the backlog would stall with runs ``running`` and ``pending``."""
    fake = providers_at_fake
    fake.latency_ms = 200
    env = worker_env_for(fake, DB_POOL_MAX_SIZE=str(POOL), DB_POOL_TIMEOUT="5")
    agent = make_agent(limits={"max_runs_per_hour": 1000})
    executions = [execution_start(agent=agent, organization=org, task=f"job {i}")[0] for i in range(BACKLOG)]
    with celery_worker(queues="io", concurrency=THREADS, extra_env=env):
        # A pool timeout would requeue the run 2 s later and another would follow: 30 s is
        # several times what the backlog needs (12 runs, 4 at a time, 0.2 s per model call).
        wait_for(
            lambda: Execution.objects.filter(pk__in=[e.pk for e in executions], status="completed").count() == BACKLOG,
            30,
            message=f"{BACKLOG} runs completed on {THREADS} threads sharing a pool of {POOL}",
        )
    assert {Execution.objects.get(pk=e.pk).retry_count for e in executions} == {0}
