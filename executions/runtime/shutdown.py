"""A worker that is told to stop hands its runs back instead of holding them to the end.

Celery's warm shutdown (SIGTERM) stops taking messages and waits for the tasks in progress.
A run may take minutes, longer than an orchestrator's grace period, so the runtime is told
(``worker_shutting_down``, connected in ``executions/apps.py``) and every run of this process
stops at its next step boundary: the model call or tool call in progress finishes and
commits, then the lease is released (owner cleared, expiry NULL) and the run is queued
again for another worker, which resumes it from its committed steps at once, without a
retry counted. The beat tick hands out a released run too, should that message be lost.

The flag is per process: with the threads pool (the platform's pool for the ``io`` queue)
every run of the worker sees it. Prefork children are not told by Celery; their runs finish
in place, or, if the worker is killed, are taken over by ``owners.owner_is_gone`` on this
machine or after their lease expires elsewhere.
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request_handback(**signal_kwargs: object) -> None:
    """Also the receiver of Celery's ``worker_shutting_down`` (SIGTERM, warm shutdown)."""
    _requested.set()


def handback_requested() -> bool:
    return _requested.is_set()


def reset() -> None:
    """For tests running the runtime in-process."""
    _requested.clear()
