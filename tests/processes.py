"""Real processes for tests: Celery workers and beat against the test database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from config.embedded import redis_url_with_db

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """The URL of the database this test session uses (pytest-django's test_* database)."""
    params = connection.settings_dict
    options = params.get("OPTIONS", {})
    host = params.get("HOST") or options.get("host", "")
    user = params.get("USER") or "postgres"
    password = params.get("PASSWORD") or ""
    auth = f"{quote(user)}:{quote(password)}" if password else quote(user)
    if host.startswith("/"):
        return f"postgres://{auth}@/{params['NAME']}?host={quote(host, safe='/')}"
    port = params.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{params['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def side_redis_url() -> str:
    """A Redis database apart from the suite's queues, for the ``make run`` instances tests start
    (its own per pytest-xdist worker, config/settings/test.py)."""
    return redis_url_with_db(settings.REDIS_URL, settings.TEST_SIDE_REDIS_DB)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def spawn(cmd: list[str], log, extra_env: dict | None = None) -> subprocess.Popen:
    """A process of the platform against the test database, in its own session (so its whole
    group can be signalled), its output in ``log``."""
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=process_env(**(extra_env or {})),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM to the process group, SIGKILL if it is not gone within ``grace`` seconds."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def celery_worker(
    *, queues: str = "default,io", pool: str = "threads", concurrency: int = 4, extra_env: dict | None = None
) -> Iterator[subprocess.Popen]:
    """A real worker process; yields once its heartbeat is in Redis; stops it afterwards."""
    from config.workers import live_workers

    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    log = open(ROOT / ".data" / f"worker-{name.split('@')[0]}.log", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-P", pool,
           "-c", str(concurrency), "-n", name, "--loglevel", "INFO", "--without-gossip", "--without-mingle"]  # fmt: skip
    proc = spawn(cmd, log, extra_env)
    try:
        wait_for(lambda: name in live_workers() or proc.poll() is not None, 60, message="worker heartbeat")
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early; see {log.name}")
        proc.worker_name = name  # type: ignore[attr-defined]
        yield proc
    finally:
        stop_group(proc, 20)
        log.close()


@contextmanager
def asgi_server(extra_env: dict | None = None) -> Iterator[str]:
    """uvicorn serving config.asgi on an ephemeral port against the test database."""
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(ROOT / ".data" / f"asgi-{port}.log", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
           "--no-access-log"]  # fmt: skip
    proc = spawn(cmd, log, extra_env)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"uvicorn exited; see {log.name}")
        try:
            return httpx.get(url + "/api/v1/health/", timeout=1).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 30, message="ASGI server")
        yield url
    finally:
        stop_group(proc, 10)
        log.close()
