"""``make run`` (config.serve): killed outright, it leaves nothing running, and it starts
again cleanly; Ctrl-C stops everything it started; a child that dies is started again
while the others keep serving, and one that keeps dying at start stops it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.db import connection

from accounts.services import api_token_create
from config import serve
from executions.runtime.owners import process_alive
from tests.processes import side_redis_url, spawn, wait_for

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


def _start(port: int, log: Path, *, worker_processes: int = 1) -> subprocess.Popen:
    redis = side_redis_url()
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "REDIS_URL": redis,
        "CELERY_BROKER_URL": redis,
        "PORT": str(port),
        "WORKER_CONCURRENCY": "2",
        "WORKER_PROCESSES": str(worker_processes),  # not the host's default: the tests count children
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


def _child_named(pid: int, role: str) -> int | None:
    """The child of make run ``pid`` that is its web, worker or beat process (with several
    workers, ``worker-N`` is the one with Celery node name agentry-N@host)."""
    marker = {"web": b"uvicorn", "worker": b" worker ", "beat": b" beat "}.get(role)
    if marker is None:  # worker-N
        marker = f" -n agentry-{role.removeprefix('worker-')}@".encode()
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if marker in cmdline:
            return child
    return None


def _stop_with_ctrl_c(proc: subprocess.Popen, log: Path) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0, log.read_text()[-3000:]
    assert "[agentry] stopped" in log.read_text()


def _kill_what_is_left(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in _children(proc.pid):
        os.killpg(pid, signal.SIGKILL)


def _app_name(pid: int) -> str | None:
    """The PGAPPNAME a child was started with (the name it gives PostgreSQL)."""
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if item.startswith(b"PGAPPNAME="):
            return item.split(b"=", 1)[1].decode()
    return None


@pytest.mark.slow
def test_a_killed_worker_is_started_again_while_web_and_beat_keep_serving(tmp_path, org, alice, make_agent):
    agent = make_agent(name="Survivor", model_config={"provider": "sandbox", "model": "sandbox-echo"})
    _, token = api_token_create(user=alice, organization=org)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = _start(port, log)
    api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    try:
        wait_for(lambda: _healthy(url) or proc.poll() is not None, 120, message="make run up")
        assert proc.poll() is None, log.read_text()[-3000:]
        web, worker, beat = (_child_named(proc.pid, role) for role in ("web", "worker", "beat"))
        assert web and worker and beat, _children(proc.pid)

        os.kill(worker, signal.SIGKILL)
        # Runs asked for while no worker is up wait in the queue; the web answers meanwhile.
        started = [api.post(f"/agents/{agent.pk}/execute/", json={"task": f"after the crash {i}"}) for i in range(3)]
        assert [r.status_code for r in started] == [202] * 3, [r.text for r in started]
        assert api.get("/executions/").status_code == 200
        wait_for(lambda: _child_named(proc.pid, "worker") not in (None, worker), 30, message="a new worker")
        for response in started:
            execution = response.json()["id"]
            wait_for(
                lambda execution=execution: api.get(f"/executions/{execution}/").json()["status"] == "completed",
                60,
                message="the queued runs completed by the new worker",
            )
        assert (_child_named(proc.pid, "web"), _child_named(proc.pid, "beat")) == (web, beat)  # never restarted
        output = log.read_text()
        assert "[agentry] worker was killed by SIGKILL after" in output and "starting it again in 1s" in output
        assert "[agentry] worker started again (pid" in output
        assert serve._pidfile(port).read_text().split() != []
        assert str(worker) not in serve._pidfile(port).read_text().split()

        _stop_with_ctrl_c(proc, log)
    finally:
        api.close()
        _kill_what_is_left(proc)


@pytest.mark.slow
def test_two_worker_processes_start_and_a_killed_one_is_started_again(tmp_path, org, alice, make_agent):
    agent = make_agent(name="Pair", model_config={"provider": "sandbox", "model": "sandbox-echo"})
    _, token = api_token_create(user=alice, organization=org)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = _start(port, log, worker_processes=2)
    api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    try:
        wait_for(lambda: _healthy(url) or proc.poll() is not None, 120, message="make run up")
        assert proc.poll() is None, log.read_text()[-3000:]
        assert len(_children(proc.pid)) == 4, _children(proc.pid)  # web, worker-1, worker-2, beat
        first, second = _child_named(proc.pid, "worker-1"), _child_named(proc.pid, "worker-2")
        assert first and second and first != second, _children(proc.pid)
        assert (_app_name(first), _app_name(second)) == ("agentry-worker-1", "agentry-worker-2")
        # Both count in the budget make run prints (WORKER_CONCURRENCY=2: 3 connections each).
        assert re.search(r"database connections at most: web \d+, worker-1 3, worker-2 3, beat 2;", log.read_text())

        os.kill(first, signal.SIGKILL)
        wait_for(lambda: _child_named(proc.pid, "worker-1") not in (None, first), 30, message="worker-1 again")
        assert _child_named(proc.pid, "worker-2") == second  # the other one kept running
        started = [api.post(f"/agents/{agent.pk}/execute/", json={"task": f"two workers {i}"}) for i in range(4)]
        assert [r.status_code for r in started] == [202] * 4, [r.text for r in started]
        for response in started:
            execution = response.json()["id"]
            wait_for(
                lambda execution=execution: api.get(f"/executions/{execution}/").json()["status"] == "completed",
                60,
                message="the runs completed",
            )
        output = log.read_text()
        assert "[agentry] worker-1 was killed by SIGKILL after" in output
        assert "[agentry] worker-1 started again (pid" in output
        assert "worker-2 was killed" not in output and "worker-2 exited" not in output
        assert str(first) not in serve._pidfile(port).read_text().split()

        _stop_with_ctrl_c(proc, log)
    finally:
        api.close()
        _kill_what_is_left(proc)


@pytest.mark.slow
def test_a_child_that_keeps_dying_at_start_stops_make_run_with_the_reason(tmp_path):
    port = _free_port()
    log = tmp_path / "serve.log"
    with socket.socket() as taken:  # something else listens on the port: the web server cannot start
        taken.bind(("127.0.0.1", port))
        taken.listen()
        proc = _start(port, log)
        try:
            code = proc.wait(180)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    output = log.read_text()
    assert code == 1, output[-3000:]
    restarts = [line for line in output.splitlines() if line.startswith("[agentry] web exited with code")]
    assert [line.rsplit(" ", 1)[-1] for line in restarts[:4]] == ["1s", "2s", "4s", "8s"], restarts
    assert "it died 5 times in a row, each within 60s of starting; stopping everything" in output
    assert "address already in use" in output  # the web server's own reason, above ours
    assert "[agentry] stopped" in output
    assert not serve._pidfile(port).exists()


def test_the_restart_backoff_doubles_and_starts_over_after_a_stable_run():
    backoff = serve.Backoff()
    assert [backoff.after_exit(2.0) for _ in range(5)] == [1, 2, 4, 8, None]
    backoff = serve.Backoff()
    assert [backoff.after_exit(2.0), backoff.after_exit(2.0), backoff.after_exit(600.0)] == [1, 2, 1]


@pytest.mark.parametrize(
    ("env", "plan", "warning"),
    [
        ({}, "web 20, worker 17, beat 2", None),
        ({"DB_POOL_MAX_SIZE": "8", "WORKER_CONCURRENCY": "4"}, "web 8, worker 5, beat 2", None),
        ({"DB_POOL_MAX_SIZE": "50", "WORKER_CONCURRENCY": "100"}, "web 50, worker 50, beat 2", "more than the server"),
        ({"WORKER_CONCURRENCY": "200"}, "web 20, worker 201, beat 2", "more than the server accepts"),
        ({"DB_POOL_MAX_SIZE": "0"}, "web unbounded, worker 17, beat 2", "turns the web server's connection pool off"),
        ({"WORKER_PROCESSES": "2"}, "web 20, worker-1 17, worker-2 17, beat 2", None),
        (
            {"WORKER_PROCESSES": "3", "WORKER_CONCURRENCY": "4"},
            "web 20, worker-1 5, worker-2 5, worker-3 5, beat 2",
            None,
        ),
        (
            {"DB_POOL_MAX_SIZE": "8", "WORKER_PROCESSES": "2", "WORKER_CONCURRENCY": "16"},
            "web 8, worker-1 8, worker-2 8, beat 2",
            None,
        ),
    ],
)
def test_make_run_prints_its_connection_budget_and_warns_when_it_does_not_fit(monkeypatch, capsys, env, plan, warning):
    monkeypatch.setattr(serve, "_cores", lambda: 2)  # one worker process by default, on any host
    for name in ("DB_POOL_MAX_SIZE", "WORKER_CONCURRENCY", "WORKER_PROCESSES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    serve._check_connection_budget()
    printed = capsys.readouterr().out
    assert re.search(rf"\[agentry\] database connections at most: {plan}; the server accepts \d+\n", printed), printed
    if warning is None:
        assert "warning" not in printed
    else:
        assert "[agentry] warning: " in printed and warning in printed


def test_the_budget_counts_every_worker_process(monkeypatch, capsys):
    """A worker's threads that fit once do not fit twice: the warning comes from the second."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
            " - coalesce(current_setting('reserved_connections', true), '0')::int"
        )
        (available,) = cursor.fetchone()
    monkeypatch.delenv("DB_POOL_MAX_SIZE", raising=False)
    threads = available - serve.WEB_DB_POOL_MAX_SIZE - serve.BEAT_CONNECTIONS - 1  # web + one worker + beat fit exactly
    monkeypatch.setenv("WORKER_CONCURRENCY", str(threads))
    for processes, warned in ((1, False), (2, True)):
        monkeypatch.setenv("WORKER_PROCESSES", str(processes))
        serve._check_connection_budget()
        printed = capsys.readouterr().out
        assert printed.count(f"worker{'-' if processes > 1 else ''}") == processes, printed
        assert ("more than the server accepts" in printed) is warned, printed


@pytest.mark.parametrize(
    ("cores", "env", "processes"),
    [(1, None, 1), (2, None, 1), (4, None, 2), (8, None, 4), (2, "3", 3), (16, "1", 1), (8, "0", 1)],
)
def test_worker_processes_default_to_one_on_two_cores_and_half_the_cores_above(monkeypatch, cores, env, processes):
    monkeypatch.setattr(serve, "_cores", lambda: cores)
    if env is None:
        monkeypatch.delenv("WORKER_PROCESSES", raising=False)
    else:
        monkeypatch.setenv("WORKER_PROCESSES", env)
    assert serve.worker_processes() == processes
    names = serve.worker_names()
    assert names == (["worker"] if processes == 1 else [f"worker-{n}" for n in range(1, processes + 1)])
    commands = serve._commands(8000)
    nodes = [commands[name][commands[name].index("-n") + 1] for name in names]
    assert nodes == (["agentry@%h"] if processes == 1 else [f"agentry-{n}@%h" for n in range(1, processes + 1)])
    assert list(commands) == ["web", *names, "beat"]
