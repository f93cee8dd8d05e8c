"""``bench.worker_probe``: what a worker process says about its own memory (P8).

Imported by the bench's workers (bench.settings CELERY_IMPORTS). The driver sends the task
and reads the answer from the bench's Redis under the key it passed: the process's RSS
(/proc/self/status), the garbage collector's collections per generation so far (before the
probe collects anything), the objects it tracks after a full collection, and the threads.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from pathlib import Path

from celery import shared_task

from bench.tasks import _redis


def rss_kb(pid: int | str = "self") -> int:
    with Path(f"/proc/{pid}/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@shared_task(name="bench.worker_probe", ignore_result=True)
def worker_probe(key: str) -> None:
    collections = [generation["collections"] for generation in gc.get_stats()]
    counts = gc.get_count()
    rss_before = rss_kb()
    gc.collect()  # the tracked objects that are live, not those awaiting collection
    sample = {
        "at": time.time(),
        "pid": os.getpid(),
        "rss_kb": rss_before,
        "rss_kb_after_collect": rss_kb(),
        "collections": collections,
        "pending": list(counts),
        "objects": len(gc.get_objects()),
        "garbage": len(gc.garbage),
        "threads": threading.active_count(),
    }
    _redis().set(key, json.dumps(sample), ex=3600)
