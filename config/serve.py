"""``make run``: prepare the database, then run web, worker(s) and beat until Ctrl-C.

``WORKER_PROCESSES`` Celery worker processes (threads pool, ``WORKER_CONCURRENCY`` threads
each; default 1 on up to 2 cores, half the cores above: ``worker_processes``).

A child that dies (OOM, ``kill -9``, a crash) is started again with a backoff while the
others keep serving; Ctrl-C or SIGTERM stops everything, and so does a child that keeps
dying right after it starts (``Backoff``).

This process owns the embedded PostgreSQL handle (when there is no DATABASE_URL) and hands
the server's URL to its children, so there is one owner of the server's lifetime: when this
process exits, the server stops (unless something else still holds it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import django
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections

from config.db import WEB_DB_POOL_MAX_SIZE
from config.embedded import embedded_postgres_url
from config.env import env_int

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
# make run is the single-box deployment people run as it is: DEBUG would show whoever makes a
# page crash its traceback, local variables and settings. Off for this process and every child
# (they get this environment); DEBUG=true in the environment still turns it on, for developers.
os.environ.setdefault("DEBUG", "false")

STOP_GRACE_SECONDS = 15
# A child that died is started again after these many seconds (1st, 2nd, ... death in a
# row within STABLE_SECONDS of its start); one more such death stops make run.
RESTART_DELAYS = (1, 2, 4, 8)
STABLE_SECONDS = 60
# Beat's scheduler keeps two connections open (measured with pg_stat_activity).
BEAT_CONNECTIONS = 2


def _prepare() -> dict[str, str]:
    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("sync_platform", verbosity=1)
    call_command("bootstrap")
    _check_connection_budget()
    env = dict(os.environ)
    if not os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = embedded_postgres_url()
    env["REDIS_URL"] = settings.REDIS_URL
    env["PYTHONUNBUFFERED"] = "1"
    # glibc gives each thread that allocates its own arena: a threads-pool worker's RSS crept up
    # ~11 MB over 1,600 runs with flat live objects, and stayed flat with two (bench P8).
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env


def connection_budget() -> dict[str, int | None]:
    """The most database connections each child may hold (None: no bound), from the
    environment they are started with.

    Web: its pool (config/asgi.py). Each worker process and beat without a pool: one
    persistent connection per thread (a worker's threads and its main one; beat measured at
    two), with a pool at most its size as well.
    """
    explicit = os.environ.get("DB_POOL_MAX_SIZE", "").strip()
    pool = env_int("DB_POOL_MAX_SIZE", 0) if explicit else WEB_DB_POOL_MAX_SIZE  # as config/asgi.py
    threads = dict.fromkeys(worker_names(), worker_concurrency() + 1)
    threads["beat"] = BEAT_CONNECTIONS
    budget: dict[str, int | None] = {"web": pool if pool > 0 else None}
    for name, most in threads.items():
        budget[name] = min(pool, most) if explicit and pool > 0 else most
    return budget


def _check_connection_budget() -> None:
    """Print what web, worker and beat may hold against what the server accepts (a warning
    when it does not fit), then give back this process's own: it only waits from here on."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - coalesce(current_setting('reserved_connections', true), '0')::int"
        )
        (available,) = cursor.fetchone()
    budget = connection_budget()
    parts = ", ".join(f"{name} {most if most is not None else 'unbounded'}" for name, most in budget.items())
    print(f"[agentry] database connections at most: {parts}; the server accepts {available}", flush=True)
    if budget["web"] is None:
        print(
            "[agentry] warning: DB_POOL_MAX_SIZE=0 turns the web server's connection pool off: it then opens"
            " one database connection per request in flight, with no upper bound",
            flush=True,
        )
    elif sum(most or 0 for most in budget.values()) > available:
        print(
            "[agentry] warning: that is more than the server accepts; lower DB_POOL_MAX_SIZE,"
            " WORKER_CONCURRENCY or WORKER_PROCESSES, or raise the server's max_connections",
            flush=True,
        )
    connections.close_all()
    for conn in connections.all(initialized_only=True):
        close_pool = getattr(conn, "close_pool", None)
        if close_pool is not None:
            close_pool()


def worker_concurrency() -> int:
    return env_int("WORKER_CONCURRENCY", 16)


def _cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's cpuset too)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_processes() -> int:
    """Celery worker processes of ``make run`` (``WORKER_PROCESSES``; at least 1).

    Default: 1 on up to 2 cores, half the cores above. One threads-pool worker is held back
    by the GIL (its CPU per run grows with its threads), but the worker is only about half
    of a run's machine CPU (the web process and PostgreSQL are the rest): on 2 cores a second
    worker process bought nothing (bench P2 with ``--p2-worker-processes``), above that
    half the cores for workers leaves the other half to web and PostgreSQL.
    """
    cores = _cores()
    return max(1, env_int("WORKER_PROCESSES", 1 if cores <= 2 else cores // 2))


def worker_names() -> list[str]:
    """The worker children's names: ``worker`` alone, or ``worker-1`` … ``worker-N``."""
    count = worker_processes()
    return ["worker"] if count == 1 else [f"worker-{number}" for number in range(1, count + 1)]


def _commands(port: int) -> dict[str, list[str]]:
    python = sys.executable
    concurrency = str(worker_concurrency())
    commands = {
        "web": [python, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                "--no-access-log"],
    }  # fmt: skip
    # Each worker process has its own Celery node name (two with one name confuse Celery's
    # control commands and its logs): agentry@host alone, agentry-N@host for several.
    for name in worker_names():
        node = "agentry@%h" if name == "worker" else f"agentry-{name.removeprefix('worker-')}@%h"
        commands[name] = [python, "-m", "celery", "-A", "config", "worker", "-Q", "default,io", "-P", "threads",
                          "-c", concurrency, "--loglevel", "INFO", "-n", node]  # fmt: skip
    commands["beat"] = [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                        "-S", "django_celery_beat.schedulers:DatabaseScheduler"]  # fmt: skip
    return commands


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when ``make run`` dies, even by SIGKILL, so a
    crash leaves no web server holding the port and no worker holding runs (Linux only; the
    worker's SIGTERM is Celery's warm shutdown, which hands its runs back)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _pidfile(port: int) -> Path:
    return Path(__file__).resolve().parent.parent / ".data" / f"make-run-{port}.pids"


def _ours(pid: int) -> bool:
    """Still one of the children this command starts (not a pid reused since)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return any(marker in cmdline for marker in (b"uvicorn config.asgi", b"celery -A config"))


def _stop_leftovers(port: int) -> None:
    """The children of an earlier ``make run`` on this port that was killed before it could
    stop them (SIGKILL, OOM) and that outlived it: stopped before anything starts again.

    Children also get SIGTERM from the kernel when this process dies (``_die_with_parent``),
    but a child still starting up may miss it (Celery installs its handlers late)."""
    path = _pidfile(port)
    if not path.exists():
        return
    pids = [int(word) for word in path.read_text().split() if word.isdigit()]
    alive = [pid for pid in pids if _ours(pid)]
    for pid in alive:
        print(f"[agentry] stopping {pid}, left running by an earlier make run", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in alive if _ours(pid)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)


class Backoff:
    """When a child that died is started again, and when ``make run`` gives up on it.

    A child that dies within ``STABLE_SECONDS`` of starting is started again after 1, 2, 4
    and 8 s; the fifth such death in a row stops ``make run`` (a child that cannot start —
    a port in use, a bad setting — would otherwise loop forever and hide the cause in its
    output). One that ran ``STABLE_SECONDS`` or more before dying starts over at 1 s.
    """

    def __init__(self) -> None:
        self.crashes = 0

    def after_exit(self, uptime: float) -> float | None:
        """Seconds to wait before the restart, or None: give up."""
        if uptime >= STABLE_SECONDS:
            self.crashes = 0
        self.crashes += 1
        if self.crashes > len(RESTART_DELAYS):
            return None
        return RESTART_DELAYS[self.crashes - 1]


class Child:
    """One process of ``make run``: web, a worker (``worker`` or ``worker-N``) or beat."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str]):
        self.name = name
        self.cmd = cmd
        # Each process names itself to PostgreSQL, so pg_stat_activity shows who holds what.
        self.env = {**env, "PGAPPNAME": f"agentry-{name}"}
        self.backoff = Backoff()
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.restart_at: float | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, env=self.env, start_new_session=True, preexec_fn=_die_with_parent)
        self.started = time.monotonic()
        self.restart_at = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _supervise(children: list[Child]) -> str | None:
    """Restart children that died, after their backoff; the reason to give up, if any."""
    now = time.monotonic()
    for child in children:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.start()
                assert child.proc is not None
                print(f"[agentry] {child.name} started again (pid {child.proc.pid})", flush=True)
            continue
        if child.proc is None or child.proc.poll() is None:
            continue
        uptime = now - child.started
        how = f"{child.name} {_describe_exit(child.proc.returncode)} after {uptime:.0f}s"
        delay = child.backoff.after_exit(uptime)
        if delay is None:
            return (
                f"{how}: it died {len(RESTART_DELAYS) + 1} times in a row, each within {STABLE_SECONDS}s of "
                "starting; stopping everything (its output above says why)"
            )
        child.restart_at = now + delay
        print(f"[agentry] {how}; starting it again in {delay:g}s", flush=True)
    return None


def _write_pidfile(port: int, children: list[Child]) -> None:
    pids = [str(child.proc.pid) for child in children if child.proc is not None and child.running()]
    _pidfile(port).write_text(" ".join(pids) + "\n")


def _stop(children: list[Child]) -> None:
    running = [child for child in children if child.running()]
    for child in running:
        assert child.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in running:
        assert child.proc is not None
        try:
            child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"[agentry] {child.name} did not stop in {STOP_GRACE_SECONDS}s; killing it", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait()


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    _stop_leftovers(port)
    env = _prepare()
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Each child in its own session: Ctrl-C reaches only us, and we stop them in order.
    children = [Child(name, cmd, env) for name, cmd in _commands(port).items()]
    for child in children:
        child.start()
    pidfile = _pidfile(port)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    _write_pidfile(port, children)
    print(f"[agentry] web http://127.0.0.1:{port}/ (admin /admin/, docs /api/docs/); Ctrl-C stops", flush=True)
    exit_code = 0
    while not stopping:
        pids = [child.proc.pid if child.proc else None for child in children]
        failure = _supervise(children)
        if failure:
            print(f"[agentry] {failure}", flush=True)
            exit_code = 1
            break
        if pids != [child.proc.pid if child.proc else None for child in children]:
            _write_pidfile(port, children)
        time.sleep(0.2)
    print("[agentry] stopping…", flush=True)
    _stop(children)
    pidfile.unlink(missing_ok=True)
    print("[agentry] stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
