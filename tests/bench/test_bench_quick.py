"""The benchmark runner works: ``python -m bench --quick`` at tiny sizes, in a subprocess.

A check that the bench code runs end to end against real processes (fake provider, web
server, worker) and writes a report with numbers - not a performance assertion: no figure
is compared with a threshold here.

It uses its own database (``agentry_bench_smoke``) and Redis database (8), never the test
databases; a file lock keeps two test sessions on one machine from sharing them at once.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.slow


def test_quick_bench_writes_a_report_with_numbers(tmp_path):
    lock_path = ROOT / ".data" / "bench-smoke.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "bench", "--quick", "--only", "P1,P2",
        "--database", "agentry_bench_smoke", "--redis-db", "8", "--output", str(tmp_path),
        "--p1-runs", "4", "--p1-warmup", "1", "--p1-rounds", "1,2",
        "--p2-runs", "16", "--p2-clients", "2", "--p2-noop", "100", "--p2-sequential", "2",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    report = json.loads((tmp_path / "report.json").read_text())
    assert (tmp_path / "report.md").read_text().startswith("# Agentry benchmark report")
    assert report["machine"]["cores"] and report["date"]
    figures = report["figures"]
    assert set(figures) == {"P1", "P2"}

    def value(key: str, name_start: str) -> float:
        metric = next(m for m in figures[key]["metrics"] if m["name"].startswith(name_start))
        assert isinstance(metric["value"], float) and math.isfinite(metric["value"]), metric
        return metric["value"]

    assert value("P1", "overhead per step, median") > 0
    assert value("P1", "SQL queries per step") > 0
    assert value("P2", "executions/s end to end") > 0
    p2 = figures["P2"]
    assert p2["details"]["baseline_noop"]["tasks_per_s"] > 0  # the baseline was measured in the same run
    assert p2["metrics"][0]["ratio"] is not None
    assert p2["details"]["runs_completed"] > 0
