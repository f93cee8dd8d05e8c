"""A real ``celery beat`` process with the database scheduler, for the trigger tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tests.processes import ROOT, spawn, stop_group


@contextmanager
def celery_beat(*, extra_env: dict | None = None) -> Iterator[subprocess.Popen]:
    """Beat reading PeriodicTasks from the test database; stopped (TERM) afterwards unless the
    test killed it. ``--max-interval 1`` makes it notice changes and due entries within a second."""
    log = open(ROOT / ".data" / f"beat-{uuid.uuid4().hex[:8]}.log", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "celery", "-A", "config", "beat", "-S", "django_celery_beat.schedulers:DatabaseScheduler",
           "--loglevel", "INFO", "--pidfile=", "--max-interval", "1"]  # fmt: skip
    proc = spawn(cmd, log, extra_env)
    proc.log_path = log.name  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        stop_group(proc, 15)
        log.close()


def kill_hard(proc: subprocess.Popen) -> None:
    """SIGKILL: beat gets no chance to write down what it sent."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
