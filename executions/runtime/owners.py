"""Who holds a lease, and whether that holder is provably gone.

A lease owner is ``host:pid:thread:machine`` where ``machine`` names this boot of this
kernel's PID namespace (``/proc/sys/kernel/random/boot_id`` and ``/proc/self/ns/pid``). A run
whose lease is held by a process of the same machine that no longer exists (or is a zombie
waiting to be reaped) can be taken over at once instead of after the lease expires: a
SIGKILLed worker or prefork child then costs its runs milliseconds, not ``EXECUTION_LEASE_SECONDS``.

Only proof of death counts. Another host, another container (another PID namespace), an
owner written before this format, a process we may not signal, a pid reused by a new
process: all read as alive, and the lease's expiry stays the rule.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
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


def owner_is_gone(owner: str) -> bool:
    """True only when ``owner`` was a process of this machine that has exited."""
    parts = owner.rsplit(":", 3)
    if len(parts) != 4:
        return False
    host, pid_text, _thread, token = parts
    if not token or token != machine_token() or host != socket.gethostname()[:64]:
        return False
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0 or pid == os.getpid():
        return False
    return not _process_alive(pid)


def _process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    # "pid (comm) state ...": comm may hold spaces or parentheses, so read after the last ")".
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state not in (["Z"], ["X"])
