"""A run whose lease holder died on this machine is taken over at once, never a live one's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from executions.models import Execution
from executions.runtime.loop import run_execution
from executions.runtime.owners import machine_token, owner_is_gone, worker_identity
from executions.services import execution_start, executions_due

pytestmark = pytest.mark.django_db


def _identity(pid: int, token: str | None = None, thread: int = 140000000000) -> str:
    return f"{socket.gethostname()[:64]}:{pid}:{thread}:{machine_token() if token is None else token}"


@pytest.fixture
def exited_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_an_exited_process_of_this_machine_is_gone(exited_pid):
    assert machine_token()  # Linux: boot id and PID namespace readable
    assert owner_is_gone(_identity(exited_pid))


def test_a_zombie_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
        assert owner_is_gone(_identity(child.pid))
    finally:
        child.wait()


@pytest.mark.parametrize(
    "owner",
    [
        "this-process",
        "parent-process",
        "other-namespace",
        "other-host",
        "old-format",
        "garbage",
    ],
)
def test_anything_short_of_proof_of_death_is_alive(owner, exited_pid):
    owners = {
        "this-process": worker_identity(),
        "parent-process": _identity(os.getppid()),
        "other-namespace": _identity(exited_pid, token="0123456789ab"),
        "other-host": f"another-host:{exited_pid}:1:{machine_token()}",
        "old-format": f"{socket.gethostname()}:{exited_pid}:140000000000",
        "garbage": "::::",
    }
    assert not owner_is_gone(owners[owner])


def _running_with_lease(execution: Execution, owner: str) -> None:
    Execution.objects.filter(pk=execution.pk).update(
        status="running",
        started_at=timezone.now(),
        lease_owner=owner,
        lease_expires_at=timezone.now() + timedelta(seconds=90),
    )


def test_a_dead_holders_run_is_taken_over_without_waiting(org, make_agent, providers_at_fake, exited_pid):
    execution, _ = execution_start(agent=make_agent(), organization=org, task="Say hi")
    _running_with_lease(execution, _identity(exited_pid))
    assert execution.pk in executions_due()  # the tick hands it out now, not in 90 s

    assert run_execution(execution.pk) is None
    execution.refresh_from_db()
    assert execution.status == "completed"
    assert execution.retry_count == 1
    assert len(providers_at_fake.chat_requests) == 1


def test_a_live_holders_run_is_left_alone(org, make_agent, providers_at_fake):
    execution, _ = execution_start(agent=make_agent(), organization=org, task="Say hi")
    _running_with_lease(execution, _identity(os.getppid()))
    assert execution.pk not in executions_due()

    wait = run_execution(execution.pk)
    assert wait is not None and 80 < wait <= 91  # try again when the lease runs out
    execution.refresh_from_db()
    assert (execution.status, execution.retry_count, execution.lease_owner) == ("running", 0, _identity(os.getppid()))
    assert providers_at_fake.chat_requests == []


def test_within_this_process_only_a_thread_still_running_the_run_holds_it():
    import threading

    from executions.runtime import owners

    other = threading.Thread(target=lambda: None)
    other.start()
    other.join()
    holder = _identity(os.getpid(), thread=other.ident)
    assert owner_is_gone(holder, "run-1")  # no thread of ours runs it: abandoned
    assert not owner_is_gone(holder)  # without the run's id nothing is concluded

    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with owners.running("run-1"):
            inside.set()
            release.wait(5)

    runner = threading.Thread(target=hold)
    runner.start()
    inside.wait(5)
    try:
        assert not owner_is_gone(_identity(os.getpid(), thread=runner.ident), "run-1")  # it is running it
        assert owner_is_gone(_identity(os.getpid(), thread=runner.ident), "run-2")
    finally:
        release.set()
        runner.join()
    assert owner_is_gone(_identity(os.getpid(), thread=runner.ident), "run-1")  # it let go
    assert owner_is_gone(_identity(os.getpid(), thread=threading.get_ident()), "run-1")  # our own earlier attempt


def test_a_run_abandoned_by_a_database_error_is_retried_and_taken_over(org, make_agent, providers_at_fake, monkeypatch):
    from django.db import OperationalError

    from executions import tasks
    from executions.runtime import loop

    execution, _ = execution_start(agent=make_agent(), organization=org, task="Say hi")
    queued: list[dict] = []
    monkeypatch.setattr(tasks.run_execution_task, "apply_async", lambda **kwargs: queued.append(kwargs))
    original = loop.Runner.run

    def pool_timeout(self) -> None:  # claimed, then the pool gives no connection in time
        raise OperationalError("couldn't get a connection after 10.00 sec")

    monkeypatch.setattr(loop.Runner, "run", pool_timeout)
    tasks.run_execution_task(str(execution.pk))
    assert queued == [{"args": [str(execution.pk)], "queue": "io", "countdown": tasks.DATABASE_RETRY_SECONDS}]
    execution.refresh_from_db()
    assert execution.status == "running" and execution.lease_owner  # the lease still names the failed thread

    monkeypatch.setattr(loop.Runner, "run", original)
    assert run_execution(execution.pk) is None  # the retry: taken over at once
    execution.refresh_from_db()
    assert (execution.status, execution.retry_count) == ("completed", 1)
