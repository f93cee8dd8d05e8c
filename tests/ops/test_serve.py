"""``make run`` (config.serve): killed outright, it leaves nothing running, and it starts
again cleanly; Ctrl-C stops everything it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from config import serve
from config.embedded import redis_url_with_db
from executions.runtime.owners import process_alive
from tests.processes import spawn, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _start(port: int, log: Path) -> subprocess.Popen:
    redis = redis_url_with_db(settings.REDIS_URL, 13)
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "REDIS_URL": redis,
        "CELERY_BROKER_URL": redis,
        "PORT": str(port),
        "WORKER_CONCURRENCY": "2",
    }
    with log.open("ab") as out:
        return spawn([sys.executable, "-m", "config.serve"], out, env)


def test_a_killed_make_run_leaves_nothing_behind_and_starts_again(tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    first = _start(port, log)
    children: set[int] = set()
    try:
        wait_for(lambda: _healthy(url) or first.poll() is not None, 120, message="make run up")
        assert first.poll() is None, log.read_text()[-3000:]
        children = _children(first.pid)
        assert len(children) == 3, children  # web, worker, beat

        os.kill(first.pid, signal.SIGKILL)  # the supervisor alone, no goodbye
        first.wait()
        # The kernel sends each child SIGTERM (a child still starting up may miss it); the
        # next make run stops whatever is left before it starts.
        second = _start(port, log)
        try:
            wait_for(
                lambda: not any(process_alive(pid) for pid in children), 60, message="the first one's children gone"
            )
            wait_for(lambda: _healthy(url) or second.poll() is not None, 120, message="make run up again")
            assert second.poll() is None, log.read_text()[-3000:]
            assert len(_children(second.pid)) == 3
            again = _children(second.pid)
            children |= again
            second.send_signal(signal.SIGINT)  # Ctrl-C
            assert second.wait(60) == 0
            assert not any(process_alive(pid) for pid in again)
            assert "[agentry] stopped" in log.read_text()
            assert not serve._pidfile(port).exists()
        finally:
            if second.poll() is None:
                os.killpg(second.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        for pid in children:  # each child leads its own process group
            if process_alive(pid):
                os.killpg(pid, signal.SIGKILL)


def test_children_left_by_a_killed_make_run_are_stopped_before_it_starts_again(tmp_path):
    port = _free_port()
    # Looks like a worker of ours (its command line), in its own session like make run's.
    leftover = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "celery -A config worker"], start_new_session=True
    )
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    pidfile = serve._pidfile(port)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{leftover.pid} {stranger.pid}\n")  # a pid reused by something else is left alone
    try:
        serve._stop_leftovers(port)
        assert leftover.wait(5) is not None
        assert stranger.poll() is None
        assert not pidfile.exists()
    finally:
        for proc in (leftover, stranger):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
