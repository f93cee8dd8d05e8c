"""A run's lease: taking it (``claim``), losing it (``LeaseLost``), handing it back at a worker's
shutdown (``HandBack``), and this thread's connection given back while a model answers."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from executions.models import (
    Execution,
    ExecutionStatus,
)

logger = logging.getLogger(__name__)

S = ExecutionStatus


def claim(execution_id: Any, owner: str, *, gone_owner: str | None = None) -> Execution | None:
    """Take the lease of a runnable execution; None when it is not ours to run now.

    ``gone_owner``: the holder of a live lease that ``owners.owner_is_gone`` proved dead; the
    lease is taken over only if that holder still has it.
    """
    now = timezone.now()
    with connection.cursor() as cursor:
        # pending: a fresh run; running with an expired (or released) lease: its worker died,
        # or a person approved and handed it back; waiting: its timer is due.
        cursor.execute(
            """
            UPDATE executions_execution
               SET status = 'running', lease_owner = %s, lease_expires_at = %s,
                   started_at = COALESCE(started_at, %s),
                   wait_until = NULL,
                   retry_count = retry_count + CASE WHEN status = 'running' AND lease_owner <> '' THEN 1 ELSE 0 END
             WHERE id = %s
               AND (status = 'pending'
                    OR (status = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < %s))
                    OR (status = 'running' AND lease_owner = %s)
                    OR (status = 'waiting' AND wait_until <= %s))
            RETURNING id
            """,
            [owner, now + timedelta(seconds=settings.EXECUTION_LEASE_SECONDS), now, execution_id, now, gone_owner, now],
        )
        if cursor.fetchone() is None:
            return None
    return Execution.objects.select_related("agent_version", "agent", "organization__plan").get(pk=execution_id)


class LeaseLost(Exception):
    pass


class HandBack(Exception):
    """The worker is shutting down: release the run for another worker (runtime/shutdown.py)."""


def release_connection_during_wait() -> None:
    """Hand this thread's database connection back to psycopg's pool before a model call.

    A run spends almost all its life waiting for its model; holding a connection through
    that wait caps the runs in flight on a worker host at the pool's size. With the pool on
    (``DB_POOL_MAX_SIZE`` > 0) and outside a transaction, the connection goes back to the
    pool and the next query takes one again (microseconds, no new session). Without the
    pool a close would mean a new session per step, so nothing changes. Nothing the loop
    keeps lives in the session: leases are row columns, locks are transaction-scoped.
    """
    if not settings.AGENTRY_RELEASE_DB_DURING_MODEL_CALL or settings.DB_POOL_MAX_SIZE <= 0:
        return
    if connection.in_atomic_block:
        return
    connection.close()
