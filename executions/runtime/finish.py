"""How a run ends, or pauses: final status, stats in the same transaction, events after it."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.services import activity_record
from agents.services.stats import agent_run_started, agent_stats_record_run
from config.api.json_input import MAX_JSON_DEPTH, JsonInputError, json_loads_bounded
from config.json_schema import error_line, schema_errors
from executions import hooks, telemetry
from executions.events import event_emit
from executions.models import Execution, ExecutionLog, ExecutionStatus, ExecutionStep, StepStatus
from executions.state import TransitionRefused, transition
from executions.tasks import enqueue_execution

if TYPE_CHECKING:
    from executions.llm.base import LLMResponse
    from executions.runtime.base import RunnerBase
    from executions.runtime.tools_port import ToolOutcome

logger = logging.getLogger(__name__)
S = ExecutionStatus
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class Stop(Exception):
    """End the run with this status (raised anywhere inside the loop)."""

    def __init__(self, status: str, message: str, code: str = "", details: dict | None = None, output: Any = None):
        super().__init__(message)
        self.status, self.message, self.code, self.details, self.output = status, message, code, details or {}, output


def parse_answer(content: str) -> Any:
    """The JSON of a structured answer, held to the bounds of any JSON the platform stores:
    JsonInputError for a NUL character or nesting too deep, ValueError for invalid JSON."""
    text = content.strip()
    match = _FENCE.match(text)
    return json_loads_bounded(match.group(1) if match else text)


def output_problem(content: str, schema: dict) -> str | None:
    try:
        value = parse_answer(content)
    except JsonInputError as problem:
        where = "" if problem.field == "body" else f" at {problem.field}"
        if problem.is_nul:
            return f"the JSON contains a NUL character (\\u0000){where}, which cannot be stored"
        return f"the JSON nests deeper than {MAX_JSON_DEPTH} levels"
    except ValueError as exc:
        return f"not valid JSON: {exc}"
    errors = schema_errors(schema, value, limit=5)
    return "; ".join(error_line(e) for e in errors) if errors else None


def complete(runner: RunnerBase, response: LLMResponse) -> None:
    output: Any = {"text": response.content}
    if runner.config.get("output_schema"):
        output = parse_answer(response.content)
    end(runner, Stop(S.COMPLETED, "", output=output))


def on_started(runner: RunnerBase) -> None:
    """Inside the first step's transaction."""
    execution = runner.execution
    agent_run_started(agent_id=execution.agent_id)
    event_emit(
        organization_id=execution.organization_id,
        event_type="ai.execution.started",
        payload={"execution_id": execution.pk, "agent_id": execution.agent_id, "trigger_type": execution.trigger_type},
        agent_id=execution.agent_id,
        execution_id=execution.pk,
    )


def end(runner: RunnerBase, stop: Stop) -> None:
    finish_execution(runner.execution, stop, events=runner.events, usage=runner.resource_usage())


def finish_execution(execution: Execution, stop: Stop, *, events: Any, usage: dict[str, int] | None = None) -> bool:
    """Move to a final status with stats, events and the activity row in one transaction.

    Returns False when the stored status did not allow it (somebody else ended the run).
    """
    runner_events = events
    with transaction.atomic():
        totals: dict[str, Any] = dict(
            Execution.objects.filter(pk=execution.pk).values(
                "tokens_total",
                "tokens_input",
                "tokens_output",
                "tool_calls",
                "cost",
                "started_at",
                "created_at",
                "retry_count",
                "actions_taken",
            )[0]
        )
        started = totals["started_at"] or totals["created_at"]
        duration_ms = int((timezone.now() - started).total_seconds() * 1000)
        resources: dict[str, Any] = {}
        if usage:
            # Added to what earlier steps and resumes recorded (RunnerBase.bump), never
            # replacing it; in the status change's own UPDATE.
            resources = {
                "cpu_time_ms": F("cpu_time_ms") + usage.get("cpu_time_ms", 0),
                "memory_peak_mb": Greatest(F("memory_peak_mb"), usage.get("memory_peak_mb", 0)),
            }
        try:
            transition(
                execution,
                stop.status,
                output=stop.output,
                result_text=(stop.output or {}).get("text", "") if isinstance(stop.output, dict) else "",
                error=stop.message if stop.status != S.COMPLETED else "",
                error_code=stop.code,
                error_details=stop.details,
                duration_ms=duration_ms,
                **resources,
            )
        except TransitionRefused:
            return False  # someone else ended it; nothing more to do
        for name in resources:
            # The expressions are not values: read from the row if anything asks.
            execution.__dict__.pop(name, None)
        _log_end(execution, stop, totals=totals, duration_ms=duration_ms)

        agent_stats_record_run(
            agent_id=execution.agent_id,
            status=stop.status,
            tokens=totals["tokens_total"],
            # The reference's count: every action the run recorded (jsonb_array_length of
            # actions_taken), refused and failed calls included.
            actions=len(totals["actions_taken"] or []),
            cost=totals["cost"],
            duration_ms=duration_ms,
            error=stop.message,
            started=totals["started_at"] is not None,  # a run cancelled before it started never counted as busy
        )
        name = "execution_completed" if stop.status == S.COMPLETED else "execution_failed"
        runner_events.add(
            "agent_finished",
            {"status": stop.status, "reason": stop.message or "final_answer", "error_code": stop.code},
        )
        runner_events.add(
            name,
            {
                "status": stop.status,
                "output": stop.output,
                "error": stop.message,
                "error_code": stop.code,
                "tokens": totals["tokens_total"],
                "cost": str(totals["cost"]),
            },
        )
        runner_events.flush()
        if stop.status == S.COMPLETED:
            event_type = "ai.execution.completed"
        elif stop.status in (S.FAILED, S.TIMED_OUT):
            event_type = "ai.execution.failed"
        else:
            event_type = ""
        if event_type:
            event_emit(
                organization_id=execution.organization_id,
                event_type=event_type,
                payload={
                    "execution_id": execution.pk,
                    "agent_id": execution.agent_id,
                    "status": stop.status,
                    "error": stop.message,
                    "error_code": stop.code,
                    "tokens": totals["tokens_total"],
                    "cost": totals["cost"],
                    # The reference's names (core-infrastructure, "Integration Code Example").
                    "actions_taken": totals["actions_taken"] or [],
                    "tokens_used": totals["tokens_total"],
                    "duration_ms": duration_ms,
                },
                agent_id=execution.agent_id,
                execution_id=execution.pk,
            )

        activity_record(
            organization=execution.organization,
            action=f"execution.{stop.status}",
            user=execution.triggered_by_user,
            target=execution,
            agent_id=execution.agent_id,
            # What the run was asked and answered, as the reference's log keeps them
            # (bounded, secret-looking keys redacted by activity_record).
            request_summary={"task": execution.task, "trigger_type": execution.trigger_type},
            response_summary={"output": stop.output, **({"error_code": stop.code} if stop.code else {})},
            status="success" if stop.status == S.COMPLETED else "failure",
            duration_ms=duration_ms,
            tokens=totals["tokens_total"],
            cost=totals["cost"],
        )

        hooks.after_execution_finished(execution.pk, execution=execution)
        telemetry.run_ended(execution, status=stop.status, error_code=stop.code, totals=totals)
    return True


def _log_end(execution: Execution, stop: Stop, *, totals: dict[str, Any], duration_ms: int) -> None:
    level = {"completed": "info", "cancelled": "warn"}.get(str(stop.status), "error")
    message = f"Run {stop.status}." if not stop.message else f"Run {stop.status}: {stop.message}"
    ExecutionLog.objects.create(
        execution=execution,
        level=level,
        message=message[:4000],
        metadata={
            "status": stop.status,
            "error_code": stop.code,
            "tokens": totals["tokens_total"],
            "tool_calls": totals["tool_calls"],
            "cost": str(totals["cost"]),
            "duration_ms": duration_ms,
        },
    )


def start_waiting(runner: RunnerBase, seconds: int) -> None:
    """Inside the act step's transaction: release the worker until the timer is due."""
    until = timezone.now() + timedelta(seconds=seconds)
    # The timer is not work: the run's timeout_seconds bounds its active time, so the
    # deadline moves by the time spent waiting (approvals do the same).
    deadline = runner.execution.deadline_at + timedelta(seconds=seconds) if runner.execution.deadline_at else None
    transition(
        runner.execution, S.WAITING, wait_until=until, lease_owner="", lease_expires_at=None, deadline_at=deadline
    )
    runner.events.add("status", {"status": S.WAITING, "wait_until": until.isoformat()})
    runner.events.flush()
    # Short timers are handed to the broker; every timer is also picked up by the beat tick.
    enqueue_execution(runner.execution.pk, countdown=seconds)


def await_approval(runner: RunnerBase, step: Any, outcome: ToolOutcome) -> None:
    """Hold the tool call for a person: the run waits without a worker until resolved."""
    with transaction.atomic():
        runner.bump({})  # the CPU time so far is the run's, whoever resumes it
        step.status = StepStatus.AWAITING_APPROVAL
        step.save(update_fields=["status"])
        transition(runner.execution, S.WAITING_APPROVAL, lease_owner="", lease_expires_at=None)
        approval = hooks.open_approval(execution=runner.execution, step=step, outcome=outcome)
        runner.log(
            "info",
            f"Waiting for a person to approve {step.tool_name!r}.",
            step_number=step.step_number,
            tool=step.tool_name,
            approval_id=str((approval or {}).get("approval_id", "")),
        )
        runner.events.add(
            "approval_requested",
            {"step_number": step.step_number, "tool": step.tool_name, "input": step.tool_input, "approval": approval},
        )
        runner.events.add("status", {"status": S.WAITING_APPROVAL})
        runner.events.flush()


def fail_on_exception(execution: Execution, *, owner: str, error: Exception, events: Any) -> None:
    """A Python exception escaped the run's loop: a bug, or an answer nobody foresaw. Unlike a
    worker's death it would happen again on every resume (a takeover at every lease expiry
    until the deadline), so the run fails now, with a clear code; the traceback goes to the
    operators' log, only the exception's type to the run. ``events``: an empty buffer."""
    name = type(error).__name__
    message = f"The run stopped on an unexpected error ({name}); the operators' log has the details."
    with transaction.atomic():
        held = (
            Execution.objects.select_for_update().filter(pk=execution.pk, lease_owner=owner, status=S.RUNNING).exists()
        )
        if not held:
            # Another worker took the run over meanwhile (its resume may even have removed the
            # step this one was writing), or it ended: it is theirs to decide, not ours.
            logger.warning("execution %s: %s in a worker that no longer holds the run", execution.pk, name)
            return
        logger.error("execution %s: %s escaped the run loop; the run fails", execution.pk, name, exc_info=error)
        ExecutionStep.objects.filter(execution_id=execution.pk, status=StepStatus.STARTED).update(
            status=StepStatus.FAILED, is_error=True, output_text=message, completed_at=timezone.now()
        )
        ExecutionLog.objects.create(execution=execution, level="error", message=message, metadata={"exception": name})
        finish_execution(execution, Stop(S.FAILED, message, "InternalError", {"exception": name}), events=events)
