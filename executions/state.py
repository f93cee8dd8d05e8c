"""The execution status machine (DESIGN.md §5), enforced in this one place.

    pending → running → completed | failed | cancelled | timed_out
    running → waiting_approval → running (approved) | cancelled (denied or expired)
    running → waiting → running (durable timer)

Every change of status goes through ``transition``: a conditional UPDATE that succeeds only
from an allowed status, so two processes racing to move the same run cannot both win.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from executions.models import Execution, ExecutionStatus

S = ExecutionStatus

ALLOWED: dict[str, frozenset[str]] = {
    # to: from
    S.RUNNING: frozenset({S.PENDING, S.RUNNING, S.WAITING, S.WAITING_APPROVAL}),
    S.WAITING: frozenset({S.RUNNING}),
    S.WAITING_APPROVAL: frozenset({S.RUNNING}),
    S.COMPLETED: frozenset({S.RUNNING}),
    S.FAILED: frozenset({S.PENDING, S.RUNNING}),
    S.TIMED_OUT: frozenset({S.RUNNING, S.WAITING}),
    S.CANCELLED: frozenset({S.PENDING, S.RUNNING, S.WAITING, S.WAITING_APPROVAL}),
}


class TransitionRefused(Exception):
    def __init__(self, execution_id: Any, to: str, current: str | None):
        super().__init__(f"execution {execution_id}: cannot go to {to} from {current}")
        self.current = current


def can_transition(current: str, to: str) -> bool:
    return current in ALLOWED.get(to, frozenset())


def transition(execution: Execution, to: str, *, expect: str | None = None, **fields: Any) -> Execution:
    """Move ``execution`` to ``to`` (and set ``fields``) if its stored status allows it.

    ``expect`` narrows the allowed source to one status (e.g. only pending → running).
    Raises TransitionRefused with the stored status when another process got there first.
    """
    sources = ALLOWED[to] if expect is None else ALLOWED[to] & {expect}
    fields["status"] = to
    if to in (S.COMPLETED, S.FAILED, S.CANCELLED, S.TIMED_OUT):
        fields.setdefault("completed_at", timezone.now())
        fields.setdefault("lease_owner", "")
        fields.setdefault("lease_expires_at", None)
    updated = Execution.objects.filter(pk=execution.pk, status__in=sources).update(**fields)
    if updated != 1:
        current = Execution.objects.filter(pk=execution.pk).values_list("status", flat=True).first()
        raise TransitionRefused(execution.pk, to, current)
    for name, value in fields.items():
        setattr(execution, name, value)
    return execution
