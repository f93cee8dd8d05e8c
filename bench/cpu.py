"""Machine CPU spent by a process tree, from the kernel's own counters (``/proc``).

A tree's CPU is, for the process and each live descendant, its user + system time plus the
time of the children it has reaped (``cutime``/``cstime``): PostgreSQL's backends exit and are
reaped by the postmaster, so their time is in its ``cutime``; a backend still alive is counted
by itself. Nothing is counted twice. Linux only; elsewhere the figures are None.
"""

from __future__ import annotations

import os
from pathlib import Path

from config import embedded

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the 3rd on (state, ppid, …)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def tree_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid`` and its descendants so far (None if it is gone or not Linux)."""
    if _stat(pid) is None:
        return None
    tree = _children()
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields is not None:  # utime, stime, cutime, cstime: fields 14-17 of the line
            total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / _TICK
        todo.extend(tree.get(current, []))
    return total


def postmaster_pid() -> int | None:
    """The embedded PostgreSQL's postmaster (the first line of ``postmaster.pid``), if it runs here."""
    try:
        return int((embedded.DATA_DIR / "postgres" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class CpuMeter:
    """``snapshot()`` before and after; ``per_run(runs)`` gives ms of CPU per run per process."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.before: dict[str, float | None] = {}
        self.after: dict[str, float | None] = {}

    def start(self) -> None:
        self.before = {name: tree_seconds(pid) if pid else None for name, pid in self.pids.items()}

    def stop(self) -> None:
        self.after = {name: tree_seconds(pid) if pid else None for name, pid in self.pids.items()}

    def per_run_ms(self, runs: int) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name in self.pids:
            before, after = self.before.get(name), self.after.get(name)
            out[name] = None if before is None or after is None or not runs else (after - before) * 1000 / runs
        known = [v for v in out.values() if v is not None]
        out["total"] = sum(known) if len(known) == len(self.pids) else None
        return out
