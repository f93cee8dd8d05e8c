"""Where the benchmarks run: a dedicated database and Redis database, and the processes.

- Database: ``agentry_bench`` (``--database``) on the configured server (``DATABASE_URL``)
  or on the embedded one, created and migrated when missing; the development database and
  the test databases are never touched. ``BENCH_DATABASE_URL`` names a database outright.
- Redis: the configured (or local, or embedded) server, database 7 (``--redis-db``),
  flushed when the bench starts: it holds only the bench's broker queues and cache keys.
- Processes (fake provider, web server, workers, beat, the LangGraph server) are started in
  their own sessions, logged to ``.data/bench/``, and their whole process groups are stopped
  when a figure ends, when the bench fails, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import django
import httpx
import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from redis import Redis

from config import embedded
from config.embedded import embedded_postgres_url
from config.workers import live_workers
from executions.llm.registry import clear_client_cache

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".data" / "bench"
FAKE_API_KEY = "sk-fake-bench-0123456789"
SETTINGS = "bench.settings"

# Filled by configure(): what every child process gets, and the database it must be.
_ENV: dict[str, str] = {}
_EXPECTED = [""]


def configure(*, database: str, redis_db: int, reset: bool = False) -> dict[str, str]:
    """Point this process (before Django starts) and its children at the bench's services."""
    _EXPECTED[0] = database
    # Before config.embedded is imported: it reads the embedded database's name at import.
    os.environ["AGENTRY_EMBEDDED_DB_NAME"] = database

    embedded.DATABASE_NAME = database
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")  # as `make run` and the image ship (config/serve.py)
    os.environ["CACHE_KEY_PREFIX"] = "agentry-bench"
    os.environ["AGENTRY_TOOL_PORT"] = "bench.tooling.BenchToolPort"
    # Memory extraction is one more model call per run, which the figures' "two model calls,
    # one tool call" does not include; the Episode is still written after every run.
    os.environ["MEMORY_EXTRACTION_ENABLED"] = "false"
    explicit = os.environ.get("BENCH_DATABASE_URL")
    if explicit:
        os.environ["DATABASE_URL"] = explicit
        _EXPECTED[0] = urlsplit(explicit).path.lstrip("/")
    elif os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = _ensure_database(os.environ["DATABASE_URL"], database)
    else:
        os.environ.pop("DATABASE_URL", None)
    if reset:
        _reset_database(database)
    redis_url = os.environ.get("REDIS_URL") or embedded.default_redis_url()
    os.environ["REDIS_URL"] = embedded.redis_url_with_db(redis_url, redis_db)
    os.environ["CELERY_BROKER_URL"] = os.environ["REDIS_URL"]
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return dict(os.environ)


def _reset_database(name: str) -> None:
    """Drop and create the bench's database (``--reset-db``); never another one."""
    if name != _EXPECTED[0] or not name.startswith("agentry_bench"):
        raise SystemExit(f"bench: refusing to drop database {name!r}")
    if os.environ.get("DATABASE_URL"):
        parts = urlsplit(os.environ["DATABASE_URL"])
        admin = {"conninfo": urlunsplit(parts._replace(path="/postgres"))}
    else:
        params = embedded.embedded_postgres()
        admin = {"host": params["HOST"], "user": params["USER"], "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _ensure_database(url: str, name: str) -> str:
    """The same server as ``url`` with database ``name``, created when missing."""
    parts = urlsplit(url)
    target = urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return target


def start_django() -> None:
    """Django in this process, the database migrated, the platform's rows synced."""
    django.setup()
    # Never the development database or a test database: refuse before writing anything.
    name = database_name()
    if name != _EXPECTED[0]:
        raise SystemExit(f"bench: connected to database {name!r}, expected {_EXPECTED[0]!r}; refusing to run")
    call_command("migrate", interactive=False, verbosity=0)
    call_command("sync_platform", verbosity=0)

    if not os.environ.get("DATABASE_URL"):
        # The children connect to the server this process holds open.
        os.environ["DATABASE_URL"] = embedded_postgres_url()
    _ENV.update(os.environ)
    _ENV.update(DJANGO_SETTINGS_MODULE=SETTINGS, REDIS_URL=settings.REDIS_URL, PYTHONUNBUFFERED="1")


def database_name() -> str:
    return str(connection.settings_dict["NAME"])


def child_env(**extra: Any) -> dict[str, str]:
    env = dict(_ENV or os.environ)
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


def redis() -> Any:
    return Redis.from_url(settings.REDIS_URL)


def flush_redis() -> None:
    """Empty the bench's Redis database: queues and keys of an earlier (maybe aborted) run."""
    redis().flushdb()


def purge_queues() -> int:
    """Drop messages left in the broker's queues (default, io) between figures."""
    client = redis()
    dropped = 0
    for queue in ("io", "default"):
        dropped += int(client.llen(queue))
        client.delete(queue)
    client.delete("unacked", "unacked_index")
    return dropped


def retire_leftover_runs() -> int:
    """Cancel the bench database's unfinished runs (from an earlier figure or an aborted bench):
    a later figure's worker and beat tick would otherwise pick them up and share its CPU."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE executions_execution SET status = 'cancelled', error_code = 'BenchLeftover',"
            " lease_owner = '', lease_expires_at = NULL, completed_at = now()"
            " WHERE status IN ('pending', 'running', 'waiting', 'waiting_approval')"
        )
        return cursor.rowcount


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")


def wait_for_count(
    read: Callable[[], int], target: int, *, stall: float, timeout: float, interval: float = 0.05
) -> int:
    """Poll ``read()`` until it reaches ``target``, stops moving for ``stall`` seconds, or
    ``timeout`` passes; returns the last value (callers report a shortfall as lost work)."""
    deadline = time.monotonic() + timeout
    last, moved = -1, time.monotonic()
    while True:
        value = read()
        now = time.monotonic()
        if value != last:
            last, moved = value, now
        if value >= target or now - moved > stall or now > deadline:
            return value
        time.sleep(interval)


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


# -- processes ---------------------------------------------------------------------------

_RUNNING: dict[int, str] = {}  # pid -> name, for the last-resort clean-up


class Process:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.name = name
        self.log_path = LOG_DIR / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _RUNNING[self.proc.pid] = name

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")

    def stop(self, grace: float = 15.0) -> None:
        try:
            if self.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(5)
            # Children that outlived their parent (uvicorn's worker processes, say).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        finally:
            _RUNNING.pop(self.proc.pid, None)
            self._log.close()


class Processes(contextlib.AbstractContextManager):
    """The processes of one figure; all stopped (newest first) when the block ends."""

    def __init__(self) -> None:
        self.started: list[Process] = []

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        while self.started:
            self.started.pop().stop()

    def start(
        self,
        name: str,
        cmd: list[str],
        *,
        env: dict[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        timeout: float = 60.0,
        cwd: Path = ROOT,
    ) -> Process:
        process = Process(name, cmd, env or child_env(), cwd)
        self.started.append(process)
        if ready is not None:

            def up() -> bool:
                process.check()
                return ready()

            wait_until(up, timeout, name)
        return process

    # -- the usual ones -------------------------------------------------------------

    def fake_provider(self, *, latency_ms: float = 0) -> str:
        """The fake LLM server; returns its OpenAI base URL (``…/v1``)."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        self.start(
            f"fake-provider-{port}",
            [sys.executable, "-m", "bench.fake_provider", "--port", str(port), "--latency-ms", str(latency_ms)],
            ready=lambda: http_ok(url + "/health"),
            timeout=20,
        )
        return url + "/v1"

    def web(self, *, provider_url: str | None = None, workers: int = 1, extra_env: dict | None = None) -> str:
        """uvicorn serving config.asgi:application; returns its base URL."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log", "--log-level", "warning", "--workers", str(workers),
               "--backlog", "4096"]  # fmt: skip
        env = child_env(**provider_env(provider_url), **(extra_env or {}))
        self.start(f"web-{port}", cmd, env=env, ready=lambda: http_ok(url + "/api/v1/health/"), timeout=60)
        return url

    def worker(
        self,
        *,
        queues: str = "io,default",
        concurrency: int = 8,
        pool: str = "threads",
        provider_url: str | None = None,
        extra_env: dict | None = None,
    ) -> Process:
        """A Celery worker of the platform (``-A config``); returns once its heartbeat is in Redis."""
        name = f"bench-{uuid.uuid4().hex[:8]}@localhost"
        cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-P", pool,
               "-c", str(concurrency), "-n", name, "--loglevel", os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"), "--without-gossip",
               "--without-mingle", "--without-heartbeat"]  # fmt: skip
        env = child_env(**provider_env(provider_url), **(extra_env or {}))
        return self.start(f"worker-{name.split('@')[0]}", cmd, env=env, ready=lambda: name in live_workers())

    def beat(self, *, extra_env: dict | None = None) -> Process:
        schedule = LOG_DIR / "celerybeat-schedule"
        cmd = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
               "-S", "django_celery_beat.schedulers:DatabaseScheduler", "-s", str(schedule)]  # fmt: skip
        process = self.start("beat", cmd, env=child_env(**(extra_env or {})))
        time.sleep(1.0)
        process.check()
        return process


def task_failures(process: Process) -> dict[str, int]:
    """Tasks that raised in a worker, by the error's kind, from its log (JSON lines)."""
    kinds = {
        "pool timeout (no database connection within 10 s)": "couldn't get a connection",
        "deadlock": "deadlock detected",
    }
    counts: dict[str, int] = {}
    process._log.flush()
    with process.log_path.open(errors="replace") as handle:
        for line in handle:
            if "raised unexpected" not in line:
                continue
            kind = next((name for name, needle in kinds.items() if needle in line), "other")
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def provider_env(provider_url: str | None) -> dict[str, str]:
    """The SDKs' own variables, pointing every provider at the fake (DESIGN.md §5)."""
    if not provider_url:
        return {}
    root = provider_url.removesuffix("/v1")
    return {
        "OPENAI_BASE_URL": provider_url,
        "OPENAI_API_KEY": FAKE_API_KEY,
        "ANTHROPIC_BASE_URL": root,
        "ANTHROPIC_API_KEY": FAKE_API_KEY,
        "GROQ_BASE_URL": root,
        "GROQ_API_KEY": FAKE_API_KEY,
    }


def use_provider_in_process(provider_url: str) -> None:
    """Point this process's runtime (P1 runs executions in-process) at the fake."""
    root = provider_url.removesuffix("/v1")
    settings.PROVIDER_ENV = {
        "openai": {"api_key": FAKE_API_KEY, "base_url": provider_url},
        "anthropic": {"api_key": FAKE_API_KEY, "base_url": root},
        "groq": {"api_key": FAKE_API_KEY, "base_url": root},
    }
    clear_client_cache()


def stop_everything() -> None:
    """Last resort (atexit, signals): kill every process group still registered."""
    for pid in list(_RUNNING):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _RUNNING.pop(pid, None)


def install_signal_handlers() -> None:
    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    atexit.register(stop_everything)


def pg_connections(database: str) -> int:
    """Server connections to ``database`` right now (pg_stat_activity), from this process."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database])
        return int(cursor.fetchone()[0])
