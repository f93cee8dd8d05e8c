"""Idempotency-Key: whose key it is, and what it was sent with.

A key is scoped to the caller (the person behind the session or token; ``platform`` for
triggers nobody sent) and to the agent or chain it runs: two people, or one person on two
agents, never share a key. A key seen again with a different request body is refused with
422 ``IdempotencyKeyMismatch`` rather than answered with the first request's run.

Rows written before keys had a caller (``idempotency_caller`` null) still answer a retry,
but only to the person who started them (``triggered_by_user``), on the same agent or chain.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db.models import Q

from config.api.errors import ApiError

PLATFORM_CALLER = "platform"


def idempotency_caller(actor: Any) -> str:
    user_id = getattr(actor, "user_id", None) if actor is not None else None
    return f"user:{user_id}" if user_id is not None else PLATFORM_CALLER


def request_fingerprint(**parts: Any) -> str:
    """SHA-256 of the request's canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def same_caller_q(*, caller: str, actor: Any) -> Q:
    """The rows whose key is this caller's: theirs, and their rows from before keys had one."""
    legacy_user = getattr(actor, "user_id", None) if actor is not None else None
    return Q(idempotency_caller=caller) | Q(idempotency_caller__isnull=True, triggered_by_user_id=legacy_user)


def check_same_request(row: Any, fingerprint: str | None) -> Any:
    """``row`` when it was made by this same request, else IdempotencyKeyMismatch."""
    if row.request_fingerprint is not None and row.request_fingerprint != fingerprint:
        raise ApiError(
            code="IdempotencyKeyMismatch",
            message="This Idempotency-Key was already used with a different request; use a new key.",
            details={"idempotency_key": row.idempotency_key, "first_request": str(row.pk)},
        )
    return row
