"""A worker keeps its database connections across tasks (issue #16).

Celery's Django fix-up closed every connection before and after each task, so each run (and
each after-run task) paid for a new PostgreSQL backend. Now a worker thread keeps its
connection while it is healthy, as Django does across requests. The worker here names itself
to PostgreSQL (``PGAPPNAME``) and a sampler records its backends every few milliseconds while
runs go through it one after another.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from executions.models import Execution
from executions.services import execution_start
from tests import processes
from tests.processes import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

APP = "agentry-test-reuse"
SANDBOX = {"provider": "sandbox", "model": "sandbox-echo"}


class Backends:
    def __init__(self) -> None:
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> set[int]:
        with psycopg.connect(processes.test_database_url(), autocommit=True) as conn:
            return {
                pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [APP])
            }

    def _run(self) -> None:
        with psycopg.connect(processes.test_database_url(), autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [APP]).fetchall()
                self.seen.update(pid for (pid,) in rows)
                time.sleep(0.002)

    def __enter__(self) -> Backends:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_a_worker_thread_keeps_its_connection_across_tasks(org, owner_actor, make_agent):
    agent = make_agent(name="Reuser", model_config=SANDBOX)
    with celery_worker(concurrency=1, extra_env={"PGAPPNAME": APP}), Backends() as backends:
        ids = []
        for number in range(8):
            execution, _ = execution_start(
                agent=agent, organization=org, task=f"Say hello #{number}", actor=owner_actor
            )
            wait_for(lambda: Execution.objects.get(pk=execution.pk).is_terminal, 60, message="run finished")  # noqa: B023
            ids.append(execution.pk)
        time.sleep(0.5)  # the after-run tasks of the last run
        idle = backends.now()
    statuses = set(Execution.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses == {"completed"}
    # Eight runs, each a run task plus after-run tasks, on one worker thread (and the pool's
    # own thread for heartbeats, if it touches the database): a handful of backends at most,
    # and they are still there when the worker idles. Before, every task opened and closed one.
    assert 1 <= len(backends.seen) <= 3, backends.seen
    assert idle and idle <= backends.seen
