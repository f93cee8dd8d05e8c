"""Who holds a lease, and whether that holder is provably gone.

A lease owner is ``host:pid:thread:machine`` where ``machine`` names this boot of this
kernel's PID namespace (``/proc/sys/kernel/random/boot_id`` and ``/proc/self/ns/pid``). A run
whose lease is held by a process of the same machine that no longer exists (or is a zombie
waiting to be reaped) can be taken over at once instead of after the lease expires: a
SIGKILLed worker or prefork child then costs its runs milliseconds, not ``EXECUTION_LEASE_SECONDS``.

The same holds inside one process: a run whose lease names this very process but that no
thread of it is running (``running`` registers each one) was abandoned by a thread that
raised - the database pool timed out under load, say - and is taken over at once too.

Only proof of death counts. Another host, another container (another PID namespace), an
owner written before this format, a process we may not signal, a pid reused by a new
process: all read as alive, and the lease's expiry stays the rule.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path


@cache
def machine_token() -> str:
    """This boot of this PID namespace, or "" where it cannot be told (then nothing is ever
    declared dead)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = Path("/proc/self/ns/pid").stat().st_ino
    except OSError:
        return ""
    return hashlib.sha256(f"{boot}:{namespace}".encode()).hexdigest()[:12]


def worker_identity() -> str:
    host = socket.gethostname()[:64]
    return f"{host}:{os.getpid()}:{threading.get_ident()}:{machine_token()}"


_running: dict[str, set[int]] = {}
_running_lock = threading.Lock()


@contextmanager
def running(execution_id: object) -> Iterator[None]:
    """Marks this thread as advancing a run (from before its claim until it lets go)."""
    key, thread = str(execution_id), threading.get_ident()
    with _running_lock:
        _running.setdefault(key, set()).add(thread)
    try:
        yield
    finally:
        with _running_lock:
            threads = _running.get(key, set())
            threads.discard(thread)
            if not threads:
                _running.pop(key, None)


def owner_is_gone(owner: str, execution_id: object = None) -> bool:
    """True only when ``owner`` was a process of this machine that has exited, or a thread
    of this process that no longer runs ``execution_id``."""
    parts = owner.rsplit(":", 3)
    if len(parts) != 4:
        return False
    host, pid_text, thread_text, token = parts
    if not token or token != machine_token() or host != socket.gethostname()[:64]:
        return False
    try:
        pid, thread = int(pid_text), int(thread_text)
    except ValueError:
        return False
    if pid <= 0:
        return False
    if pid == os.getpid():
        if execution_id is None:
            return False
        if thread == threading.get_ident():
            return True  # this thread, before it claims: an earlier attempt of ours that ended
        with _running_lock:
            return thread not in _running.get(str(execution_id), set())
    return not process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process of this machine (Linux ``/proc``); a zombie, exited
    but not yet reaped, is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    # "pid (comm) state ...": comm may hold spaces or parentheses, so read after the last ")".
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state not in (["Z"], ["X"])
