"""The agent loop: one Celery task advances one execution until it ends or must wait.

Durability: every step row is committed *before* its call (status ``started``) and updated
with the result in one transaction *after*; on resume, the conversation is rebuilt from the
committed steps, so no completed LLM or tool call is repeated. A ``started`` think step is
simply called again (model calls have no side effects); a ``started`` act step is re-run
only when its tool is idempotent, else the run fails with ``ToolInterrupted``.

Failure: a worker's death (the process gone) is survived, the run resumes elsewhere; a Python
exception that escapes the loop is not (it would recur at every resume), so the run fails
with ``InternalError``, its started step marked failed.

Exclusivity: a run is advanced only by the holder of its lease (``lease_owner`` +
``lease_expires_at``), taken with a conditional UPDATE and renewed once half of it is spent
(checked with every step's commit, which proves it is still held); a worker
that loses its lease stops at the next step boundary without writing anything more.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import kombu.exceptions
import redis.exceptions
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from config.logging import log_context_var
from executions import telemetry
from executions.models import (
    Execution,
    ExecutionStatus,
    StepStatus,
    StepType,
)
from executions.runtime import finish, owners, shutdown
from executions.runtime.act import ActSteps
from executions.runtime.buffers import EventBuffer
from executions.runtime.lease import HandBack, LeaseLost, claim
from executions.runtime.owners import owner_is_gone, worker_identity
from executions.runtime.think import ThinkSteps

logger = logging.getLogger(__name__)

S = ExecutionStatus
# The database, Redis or the broker unreachable: not the run's fault, and gone after a
# restart. These escape to the task as before: it tries again shortly (the database), or the
# lease runs out and the run resumes from its committed steps (Redis, the broker). Any other
# exception that escapes the loop fails the run (finish.fail_on_exception).
RESUMED_AFTER_OUTAGE = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
)


class Runner(ThinkSteps, ActSteps):
    def run(self) -> None:
        # Every log line of this run names it (config.logging.ContextFilter); reset after, as
        # a worker process runs many executions one after another.
        log_token = log_context_var.set(
            {
                "organization_id": str(self.execution.organization_id),
                "agent_id": str(self.execution.agent_id),
                "execution_id": str(self.execution.pk),
            }
        )
        try:
            self.start_or_resume()
            answer = self.committed_answer()
            if answer is not None and self.accept_answer(answer):
                # The final answer was committed but the worker died before the run ended:
                # finish with it rather than asking the model again.
                finish.complete(self, answer)
                return
            while True:
                self.checkpoint()
                if shutdown.handback_requested():
                    raise HandBack
                think_steps = sum(
                    1 for s in self.steps if s.step_type == StepType.THINK and s.status == StepStatus.COMPLETED
                )
                if think_steps >= int(self.limits.get("max_steps_per_run", 10)):
                    raise finish.Stop(
                        S.FAILED,
                        f"The agent did not finish within max_steps_per_run={self.limits.get('max_steps_per_run')}.",
                        "MaxStepsExceeded",
                    )
                response = self.think()
                if not response.tool_calls:
                    if self.accept_answer(response):
                        finish.complete(self, response)
                        return
                    continue
                if self.act(response):
                    return  # waiting for a timer or a person; the task ends here
        except LeaseLost:
            logger.warning("lost the lease of execution %s; stopping", self.execution.pk)
        except HandBack:
            self.hand_back()
        except finish.Stop as stop:
            finish.end(self, stop)
        finally:
            log_context_var.reset(log_token)

    def start_or_resume(self) -> None:
        if not self.steps:
            timeout = int(self.limits.get("timeout_seconds", 120))
            deadline = (self.execution.started_at or timezone.now()) + timedelta(seconds=timeout)
            self.execution.deadline_at = deadline
            with transaction.atomic():
                self.log_with_step(
                    "info",
                    "Run started.",
                    trigger_type=self.execution.trigger_type,
                    agent_version_id=str(self.execution.agent_version_id or "") or None,
                    version=self.execution.version_label,
                    model=f"{self.model_config.get('provider', '')}/{self.model_config.get('model', '')}",
                )
                now = timezone.now()  # one instant: the step must not complete before it starts
                step = self.new_step(
                    StepType.OBSERVE,
                    status=StepStatus.COMPLETED,
                    input_text=self.execution.task,
                    started_at=now,
                    completed_at=now,
                    duration_ms=0,
                )
                self.events.add(
                    "execution_started",
                    {"execution_id": str(self.execution.pk), "agent_id": str(self.execution.agent_id)},
                )
                self.events.add("status", {"status": S.RUNNING})
                # Observing is reading the task: started and completed in one commit.
                self.events.add("step_started", {"step_number": step.step_number, "step_type": "observe"})
                self.events.add("observe_started", {"step_number": step.step_number})
                self.events.add("observe_completed", {"step_number": step.step_number, "input": self.execution.task})
                for warning in self.execution.warnings:
                    self.log_with_step("warn", warning)
                self.log_unoffered_tools()
                # The deadline, the lease, the cancel flag and the log lines above in one
                # statement of the first step's transaction (a death before its commit leaves
                # no step: the resume computes the deadline again).
                self.bump({}, deadline_at=deadline)
                self.events.flush()
                finish.on_started(self)
            return
        last = self.steps[-1]
        self.log(
            "info",
            "Resuming from the last committed step.",
            step_number=last.step_number,
            step_type=last.step_type,
            status=last.status,
        )
        if last.step_type == StepType.THINK and last.status == StepStatus.STARTED:
            # The model call was in flight; calling it again repeats nothing that completed.
            self.steps.pop()
            last.delete()
        elif last.step_type == StepType.ACT and last.status in (StepStatus.STARTED, StepStatus.APPROVED):
            if last.status == StepStatus.STARTED and not self.port.is_idempotent(
                context=self.tool_context(last.step_number), name=last.tool_name
            ):
                raise finish.Stop(
                    S.FAILED,
                    f"The call to {last.tool_name!r} was interrupted and the tool is not idempotent, so it was not retried.",
                    "ToolInterrupted",
                    {"step_number": last.step_number, "tool": last.tool_name},
                )
            outcome = None
            if last.status == StepStatus.STARTED:
                # The dead worker may have died before the gateway's decision was recorded (a
                # refusal, or a hold for a person): "started" is not "allowed", so decide again.
                outcome = self.port.check(
                    context=self.tool_context(last.step_number), name=last.tool_name, arguments=last.tool_input or {}
                )
            if outcome is None:
                outcome = self.run_tool(last, last.tool_name, last.tool_input or {})
            if self.record_tool(last, outcome):
                return
        self.answer_skipped_calls()

    def committed_answer(self) -> Any:
        """The model's final answer when it is the last committed step (a resume after it)."""
        last = self.steps[-1] if self.steps else None
        if last is None or last.step_type != StepType.THINK or last.status != StepStatus.COMPLETED:
            return None
        if last.llm_tool_calls:
            return None

        return SimpleNamespace(content=last.output_text, tool_calls=[])

    def answer_skipped_calls(self) -> None:
        """After a resume mid-step, run the calls of the last think step that have no act step yet."""
        think = next((s for s in reversed(self.steps) if s.step_type == StepType.THINK), None)
        if think is None or think.status != StepStatus.COMPLETED:
            return
        done = {s.tool_call_id for s in self.steps if s.step_type == StepType.ACT and s.step_number > think.step_number}
        remaining = [c for c in think.llm_tool_calls if c["id"] not in done]
        if remaining:
            self.act_on_calls(remaining)


def run_execution(execution_id: Any) -> float | None:
    """Advance the run; returns the seconds until another worker's lease on it expires when
    that is why it could not be claimed (the caller may try again then), else None."""
    owner = worker_identity()
    # Registered before the claim: another thread of this process checking whether the
    # lease's holder still runs it (owners.owner_is_gone) must see this one.
    with owners.running(execution_id):
        execution = claim(execution_id, owner)
        if execution is None:
            row = (
                Execution.objects.filter(pk=execution_id, status=S.RUNNING)
                .values_list("lease_expires_at", "lease_owner")
                .first()
            )
            if row is None:
                return None
            expires_at, holder = row
            if holder and owner_is_gone(holder, execution_id):
                # Its worker died on this machine, or a thread of this one gave it up: no
                # need to wait out the lease.
                execution = claim(execution_id, owner, gone_owner=holder)
            if execution is None:
                if expires_at is None:
                    return 0.2
                return max((expires_at - timezone.now()).total_seconds(), 0.0) + 0.2
            logger.info("took over execution %s from %s, which no longer runs it", execution_id, holder)
        with telemetry.run_segment(execution):
            try:
                Runner(execution, owner).run()
            except RESUMED_AFTER_OUTAGE:
                raise
            except Exception as error:
                # Buffered events of the step that failed were never committed: start from what was.
                last_seq = execution.events.order_by("-seq").values_list("seq", flat=True).first() or 0
                finish.fail_on_exception(
                    execution, owner=owner, error=error, events=EventBuffer(execution.pk, last_seq)
                )
    return None
