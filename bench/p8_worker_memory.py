"""P8 - a worker's memory and garbage collection under load (no growth after warm-up).

One Celery worker of the platform (io and default queues, threads pool, ``--p8-concurrency``),
the fake provider at zero latency. ``--p8-waves`` waves of ``--p8-runs`` runs of the bench
agent (one tool call, two model calls each) are started and waited for; after each wave the
worker is asked (``bench.worker_probe``, run by the worker itself) for its RSS, the garbage
collector's collections per generation so far, and the objects it tracks after a full
collection. The worker's RSS is also read from /proc every 0.5 s during the load (the peak).

The first ``--p8-warmup`` waves are the warm-up (imports, connection pools, SDK clients,
caches filling). Reported: RSS after the warm-up and at the end, its growth after the
warm-up (in MB and per 1000 runs), the live objects' growth after the warm-up, and the
collections of each generation over the measured waves. The target is no growth after the
warm-up: at most max(5 MB, 5 %) of RSS (allocator noise), and the live objects flat within
2 %.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from bench import data
from bench.env import Processes, redis, wait_until
from bench.report import Figure
from bench.worker_probe import rss_kb, worker_probe
from executions.models import TERMINAL_STATUSES, Execution

TASK = "Look the key up and answer."


def probe() -> dict[str, Any]:
    key = f"bench:probe:{uuid.uuid4().hex}"
    worker_probe.apply_async(args=[key], queue="io")
    client = redis()
    wait_until(lambda: client.get(key) is not None, 60, "the worker's memory probe", interval=0.05)
    return json.loads(client.get(key))


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.samples.append((time.time(), rss_kb(self.pid)))
            except OSError:
                return
            self.stopped.wait(self.interval)


def run(args: Any) -> Figure:
    figure = Figure("P8", "worker memory and GC under load (growth after warm-up)")
    owner = data.tenant("bench-p8")
    waves, per_wave, warmup = args.p8_waves, args.p8_runs, min(args.p8_warmup, args.p8_waves - 1)
    with Processes() as procs:
        provider = procs.fake_provider(latency_ms=0)
        worker = procs.worker(queues="io,default", concurrency=args.p8_concurrency, provider_url=provider)
        agent = data.agent(owner, "P8 load")
        sampler = RssSampler(worker.pid)
        sampler.start()
        samples = [{"wave": 0, "runs": 0, **probe()}]
        total = 0
        try:
            for wave in range(1, waves + 1):
                started = data.start_runs(owner, agent, per_wave, TASK)
                total += len(started.ids)
                wait_until(
                    lambda expected=total: (
                        Execution.objects.filter(agent_id=agent.pk, status__in=TERMINAL_STATUSES).count() >= expected
                    ),
                    args.p8_timeout,
                    f"wave {wave}",
                    interval=0.1,
                )
                samples.append({"wave": wave, "runs": total, **probe()})
                print(
                    f"[P8] wave {wave}: {total} runs, rss {samples[-1]['rss_kb'] / 1024:.1f} MB, "
                    f"objects {samples[-1]['objects']}, collections {samples[-1]['collections']}",
                    flush=True,
                )
        finally:
            sampler.stopped.set()
            sampler.join(2)
    failed = Execution.objects.filter(agent_id=agent.pk).exclude(status="completed").count()
    warm, last = samples[warmup], samples[-1]
    measured_runs = last["runs"] - warm["runs"]
    growth_mb = (last["rss_kb_after_collect"] - warm["rss_kb_after_collect"]) / 1024
    warm_mb = warm["rss_kb_after_collect"] / 1024
    objects_growth = (last["objects"] - warm["objects"]) / max(1, warm["objects"])
    probes = len(samples) - 1 - warmup  # each probe's own full collection counts in generation 2
    collections = [a - b for a, b in zip(last["collections"], warm["collections"], strict=True)]
    collections[2] -= probes
    peak_mb = max((kb for _, kb in sampler.samples), default=0) / 1024
    figure.details.update(
        {"samples": samples, "rss_timeline_kb": sampler.samples[:: max(1, len(sampler.samples) // 200)]}
    )
    figure.add("runs", total, unit=f"runs ({failed} not completed)")
    figure.add("worker RSS after warm-up", warm_mb, unit="MB")
    figure.add("worker RSS at the end", last["rss_kb_after_collect"] / 1024, unit="MB")
    figure.add("worker RSS peak during load", peak_mb, unit="MB")
    allowed = max(5.0, 0.05 * warm_mb)
    figure.add(
        "RSS growth after warm-up",
        growth_mb,
        unit=f"MB over {measured_runs} runs",
        target=f"≤ {allowed:.1f} MB (no growth)",
        met=growth_mb <= allowed,
    )
    figure.add("RSS growth per 1000 runs after warm-up", growth_mb * 1000 / max(1, measured_runs), unit="MB")
    figure.add(
        "live objects growth after warm-up",
        objects_growth * 100,
        unit=f"% ({warm['objects']} -> {last['objects']})",
        target="≤ 2 %",
        met=objects_growth <= 0.02,
    )
    for generation, count in enumerate(collections):
        figure.add(f"gc collections, generation {generation}, after warm-up", count, unit="collections")
    figure.note(
        f"{waves} waves of {per_wave} runs, the first {warmup} the warm-up; {args.p8_concurrency} worker threads; "
        "RSS after a full collection in the worker, objects = gc.get_objects() after it."
    )
    return figure
