"""Figures, the printed table and the report files (``bench/report.md``, ``bench/report.json``).

A figure (P1 … P6, the LangGraph comparison, the fake provider's ceiling) holds one or more
metrics; each metric has its value, the target of DESIGN.md §12 in words, whether it was
met, and the baseline measured in the same run with the ratio to it. Everything else a
figure measured goes in ``details`` (JSON) and ``notes`` (sentences for the report).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.db import connection

from bench.env import redis

HERE = Path(__file__).resolve().parent


@dataclass
class Metric:
    name: str
    value: float | None
    unit: str = ""
    target: str = ""
    met: bool | None = None  # None: no target, or not measurable here
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None  # value / baseline (or as the metric explains)


@dataclass
class Figure:
    key: str
    title: str
    status: str = "measured"  # measured | partial | failed | skipped
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, name: str, value: float | None, **kwargs: Any) -> Metric:
        metric = Metric(name, None if value is None else float(value), **kwargs)
        self.metrics.append(metric)
        return metric

    def note(self, text: str) -> None:
        self.notes.append(text)


# -- statistics ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values) if values else None,
        "max": max(values) if values else None,
    }


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return value / baseline


# -- the machine -------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "host": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": _git_commit(),
    }
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            info["postgresql"] = cursor.fetchone()[0].split(" on ")[0]

        info["redis"] = redis().info("server").get("redis_version")
    except Exception as exc:  # the report still gets written
        info["services_error"] = repr(exc)
    return info


# -- output --------------------------------------------------------------------------------


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if abs(value) >= 100 or float(value).is_integer():
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _met(metric: Metric) -> str:
    return {True: "yes", False: "NO", None: "—"}[metric.met]


def rows(figures: list[Figure]) -> list[list[str]]:
    table = []
    for figure in figures:
        if not figure.metrics:
            table.append([figure.key, f"({figure.status})", "—", "", "", "", ""])
        for metric in figure.metrics:
            baseline = fmt(metric.baseline) + (f" ({metric.baseline_label})" if metric.baseline_label else "")
            table.append(
                [
                    figure.key,
                    metric.name,
                    fmt(metric.value, metric.unit),
                    metric.target or "—",
                    baseline if metric.baseline is not None else "—",
                    fmt(metric.ratio) + "x" if metric.ratio is not None else "—",
                    _met(metric),
                ]
            )
    return table


HEADER = ["fig", "metric", "value", "target", "baseline (same run)", "ratio", "met"]


def text_table(figures: list[Figure]) -> str:
    table = [HEADER, *rows(figures)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def metric_line(figure: Figure, metric: Metric) -> str:
    """The one line each metric prints as soon as it is measured."""
    parts = [f"[{figure.key}] {metric.name}: {fmt(metric.value, metric.unit)}"]
    if metric.target:
        parts.append(f"target {metric.target} ({_met(metric)})")
    if metric.baseline is not None:
        parts.append(f"baseline {fmt(metric.baseline)} {metric.baseline_label}".rstrip())
    if metric.ratio is not None:
        parts.append(f"ratio {fmt(metric.ratio)}x")
    return "; ".join(parts)


def markdown(figures: list[Figure], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [
        "# Agentry benchmark report",
        "",
        f"- date: {meta['date']} (took {meta['duration_s'] / 60:.1f} min)",
        f"- command: `{meta['command']}`",
        f"- machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, {m.get('os')}",
        f"- software: Python {m.get('python')}, {m.get('postgresql', '?')}, Redis {m.get('redis', '?')},"
        f" commit {m.get('commit') or '?'}",
        f"- load average at start {m.get('load_average_at_start')}, at end {meta.get('load_average_at_end')}"
        " (anything well above 0 means other work shared the machine and the figures are noisy)",
        "",
        "Every baseline was measured in this run, on this machine, against the same services.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows(figures)]
    for figure in figures:
        lines += ["", f"## {figure.key} — {figure.title}", ""]
        lines.append(f"Status: {figure.status}; took {figure.seconds:.0f} s.")
        if figure.notes:
            lines.append("")
            lines += [f"- {n}" for n in figure.notes]
        if figure.details:
            lines += ["", "<details><summary>measurements</summary>", "", "```json"]
            lines.append(json.dumps(figure.details, indent=2, default=str))
            lines += ["```", "", "</details>"]
    return "\n".join(lines) + "\n"


def write(figures: list[Figure], meta: dict[str, Any], directory: Path = HERE) -> tuple[Path, Path]:
    meta = dict(meta)
    meta["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    md_path, json_path = directory / "report.md", directory / "report.json"
    md_path.write_text(markdown(figures, meta))
    payload = {**meta, "figures": {f.key: asdict(f) for f in figures}}
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return md_path, json_path


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class Clock:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started
