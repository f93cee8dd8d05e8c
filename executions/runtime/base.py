"""What every step of a run shares (``RunnerBase``): the run's state, its steps and events, the
lease renewed with each step's commit (``bump``) or on its own (``checkpoint``), the run's log,
and the hand-back at a worker's shutdown. The steps themselves are ``think`` and ``act``; the
loop that strings them together is ``loop``."""

from __future__ import annotations

import json
import logging
import resource
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from executions import hooks, streaming
from executions.models import (
    Execution,
    ExecutionLog,
    ExecutionStatus,
    ExecutionStep,
)
from executions.providers import resolve_providers
from executions.runtime import finish
from executions.runtime.buffers import EventBuffer
from executions.runtime.lease import LeaseLost
from executions.runtime.tools_port import ToolContext, tool_port
from executions.tasks import enqueue_execution

logger = logging.getLogger(__name__)

S = ExecutionStatus


class RunnerBase:
    def __init__(self, execution: Execution, owner: str):
        self.execution = execution
        self.owner = owner
        self.config: dict[str, Any] = execution.config
        self.port = tool_port()
        self.steps: list[ExecutionStep] = list(execution.steps.all())
        last_seq = execution.events.order_by("-seq").values_list("seq", flat=True).first() or 0
        self.events = EventBuffer(execution.pk, last_seq)
        self.limits: dict[str, Any] = self.config.get("limits") or {}
        self.model_config: dict[str, Any] = self.config.get("model_config") or {}
        # The CPU time of this thread (Celery's threads pool runs many runs in one process):
        # added to the run's cpu_time_ms at every step's commit, so resumes accumulate.
        self.cpu_mark = time.thread_time()
        self.cancel_seen: tuple[bool, float] | None = None
        # When this worker's lease runs out, as last written (the claim, then ``bump``).
        self.lease_expires_at = execution.lease_expires_at
        # Log lines of the step being committed, written by its ``bump`` (same statement).
        self.pending_logs: list[tuple[str, str, dict[str, Any]]] = []

        # Computed once per run or resume: memory retrieval costs an embedding call.
        self.retrieved = hooks.prompt_sections(execution=execution, config=self.config)
        # Endpoints, keys and connection limits: resolved once per run (one query).
        self.providers = resolve_providers(model_config=self.model_config, organization_id=execution.organization_id)
        # A transcript the caller sent with the run (the protocol doors) is its history.
        supplied = execution.input.get("history")
        self.history = (
            list(supplied)
            if supplied is not None
            else hooks.conversation_history(execution=execution, config=self.config)
        )

    @property
    def next_step_number(self) -> int:
        return (self.steps[-1].step_number + 1) if self.steps else 1

    def tool_context(self, step_number: int) -> ToolContext:
        return ToolContext(
            execution=self.execution,
            config=self.config,
            step_number=step_number,
            idempotency_key=f"{self.execution.pk}:{step_number}",
        )

    def bump(self, counters: dict[str, Any], action: dict[str, Any] | None = None, *, deadline_at: Any = None) -> None:
        """Add to the run's counters, renew the lease (once half of it is spent) and read the
        cancel flag: one statement.

        Called inside a step's committing transaction; raises LeaseLost (rolling the step
        back) when another worker has taken the run over. The cancel flag it reads makes the
        next ``checkpoint`` free of a query of its own. ``deadline_at``: set with it (the
        run's first step), rather than in an UPDATE of its own.
        """
        usage = self.resource_usage()
        counters = {**counters, "cpu_time_ms": usage["cpu_time_ms"]}
        sets = [f"{column} = {column} + %s" for column in counters]  # column names are ours
        params: list[Any] = list(counters.values())
        sets.append("memory_peak_mb = GREATEST(memory_peak_mb, %s)")
        params.append(usage["memory_peak_mb"])
        if action is not None:
            sets.append("actions_taken = actions_taken || %s::jsonb")
            params.append(json.dumps([action]))
        if deadline_at is not None:
            sets.append("deadline_at = %s")
            params.append(deadline_at)
        # The lease is renewed once half of it is spent, not at every step: the column is
        # indexed, and an UPDATE that changes no indexed column can stay on its page (HOT)
        # instead of adding an entry to each of the row's indexes. The WHERE below still
        # proves the lease is ours at every step.
        now = timezone.now()
        renewed = None
        if self.lease_expires_at is None or self.lease_expires_at - now < timedelta(
            seconds=settings.EXECUTION_LEASE_SECONDS / 2
        ):
            renewed = now + timedelta(seconds=settings.EXECUTION_LEASE_SECONDS)
            sets.append("lease_expires_at = %s")
            params.append(renewed)
        params += [self.execution.pk, self.owner]
        # The step's log lines (``log_with_step``) ride along as a CTE: a CTE's INSERT runs
        # whether or not the UPDATE matches, and a lost lease rolls the step's transaction
        # back, lines included.
        logs, self.pending_logs = self.pending_logs, []
        prefix = ""
        log_params: list[Any] = []
        if logs:
            rows = ", ".join(["(%s, %s, %s, %s::jsonb, %s)"] * len(logs))
            prefix = (
                "WITH step_logs AS (INSERT INTO executions_executionlog"  # noqa: S608  (placeholders only)
                f" (execution_id, level, message, metadata, timestamp) VALUES {rows}) "
            )
            for level, message, metadata in logs:
                log_params += [self.execution.pk, level, message, json.dumps(metadata), now]
        with connection.cursor() as cursor:
            cursor.execute(
                f"{prefix}UPDATE executions_execution SET {', '.join(sets)}"  # noqa: S608
                " WHERE id = %s AND lease_owner = %s AND status = 'running' RETURNING cancel_requested",
                log_params + params,
            )
            row = cursor.fetchone()
        if row is None:
            raise LeaseLost
        if renewed is not None:
            self.lease_expires_at = renewed
        self.cancel_seen = (bool(row[0]), time.monotonic())

    def checkpoint(self) -> None:
        """Renew the lease and read the cancel flag; end on cancel/timeout.

        Right after a step committed (``bump``), its answer is fresh and no query is needed.
        """
        seen = getattr(self, "cancel_seen", None)
        if seen is not None and time.monotonic() - seen[1] < 1.0:
            cancelled = seen[0]
        else:
            renewed = timezone.now() + timedelta(seconds=settings.EXECUTION_LEASE_SECONDS)
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE executions_execution SET lease_expires_at = %s"
                    " WHERE id = %s AND lease_owner = %s AND status = 'running' RETURNING cancel_requested",
                    [renewed, self.execution.pk, self.owner],
                )
                row = cursor.fetchone()
            if row is None:
                raise LeaseLost
            self.lease_expires_at = renewed
            cancelled = bool(row[0])
        self.cancel_seen = None
        if cancelled:
            raise finish.Stop(S.CANCELLED, "Cancelled on request.", "ExecutionCancelled")
        if self.execution.deadline_at and timezone.now() >= self.execution.deadline_at:
            raise finish.Stop(
                S.TIMED_OUT,
                f"The run exceeded its limit of {self.limits.get('timeout_seconds')} seconds.",
                "ExecutionTimeout",
            )

    def log(self, level: str, message: str, **metadata: Any) -> None:
        ExecutionLog.objects.create(execution=self.execution, level=level, message=message, metadata=metadata)

    def log_with_step(self, level: str, message: str, **metadata: Any) -> None:
        """A log line of the step about to be committed: written by its ``bump``, in the same
        statement as the run's counters (call ``bump`` after it, in the same transaction)."""
        self.pending_logs.append((level, message, metadata))

    def log_unoffered_tools(self) -> None:
        """Say, once per run, which allowed tools the model will not be offered and why (a
        missing capability grant or module): the run's log is where a user looks first.
        Written with the first step (``log_with_step``: call its ``bump`` after this)."""
        unoffered = getattr(self.port, "unoffered", None)
        gaps = unoffered(context=self.tool_context(self.next_step_number)) if unoffered else []
        if gaps:
            names = ", ".join(gap["tool"] for gap in gaps)
            self.log_with_step(
                "warn",
                f"Allowed tools not offered to the model: {names}. " + " ".join(gap["message"] for gap in gaps),
                unoffered_tools=gaps,
            )

    def new_step(self, step_type: str, **fields: Any) -> ExecutionStep:
        step = ExecutionStep.objects.create(
            execution=self.execution, step_number=self.next_step_number, step_type=step_type, **fields
        )
        self.steps.append(step)
        return step

    def hand_back(self) -> None:
        """Release the lease (claimable at once, no retry counted) and queue the run again."""
        released = Execution.objects.filter(pk=self.execution.pk, lease_owner=self.owner, status=S.RUNNING).update(
            lease_owner="", lease_expires_at=None
        )
        if not released:
            return
        self.log("info", "Handed back at worker shutdown; another worker resumes from here.")
        enqueue_execution(self.execution.pk)
        logger.info("handed execution %s back at worker shutdown", self.execution.pk)

    def publish_now(self, *events: tuple[str, dict[str, Any]]) -> int:
        """Publish live-only events ("started": the persisted stream has the completed ones)
        in one pipeline; returns how many subscribers watch the run."""
        return streaming.publish(self.execution.pk, [{"event": event, "data": data} for event, data in events])

    def resource_usage(self) -> dict[str, int]:
        """This thread's CPU time since the last call (the caller adds it to the run's), and
        the worker's peak resident memory so far (a thread has no memory of its own to read)."""
        now = time.thread_time()
        cpu_ms = int((now - self.cpu_mark) * 1000)
        self.cpu_mark += cpu_ms / 1000  # the sub-millisecond rest counts at the next call
        return {
            "cpu_time_ms": cpu_ms,
            "memory_peak_mb": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
