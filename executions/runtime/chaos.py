"""Fault injection at step boundaries, for the reliability suite (off unless configured).

``AGENTRY_CHAOS="<seed>:<probability>"`` makes a worker kill itself with SIGKILL, with that
probability, at each boundary the runtime passes: before a model call, after its step
commits, before a tool call, after its step commits. The crash leaves exactly what a real
power cut or OOM kill leaves, and the suite checks the run resumes and repeats no completed
call. Every injected fault is counted so the suite can
report how many it caused: each is appended as a line to ``AGENTRY_CHAOS_LOG`` (a file, so
the count survives the Redis restarts the suite also injects). Production settings refuse to
start with it set.
"""

from __future__ import annotations

import os
import random
import signal
from functools import cache

from django.conf import settings

BOUNDARIES = ("before_think", "after_think", "before_tool", "after_tool")


@cache
def _rng() -> tuple[random.Random, float] | None:
    spec = getattr(settings, "AGENTRY_CHAOS", "")
    if not spec:
        return None
    seed, probability = spec.split(":")
    # Each process draws its own sequence (seeded, so a failing run can be replayed).
    return random.Random(f"{seed}:{os.getpid()}"), float(probability)  # noqa: S311 (not for secrets)


def boundary(point: str) -> None:
    state = _rng()
    if state is None:
        return
    rng, probability = state
    if rng.random() < probability:
        log = getattr(settings, "AGENTRY_CHAOS_LOG", "")
        if log:
            with open(log, "a") as handle:  # noqa: PTH123
                handle.write(f"{os.getpid()} {point}\n")
        os.kill(os.getpid(), signal.SIGKILL)
