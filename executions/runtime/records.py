"""What a run writes to its own log (``ExecutionLog``) as it goes: every step's outcome, the
model's retries and fallbacks, tool results and refusals. The start, approval waits and the
end are written where they happen (``loop``, ``finish``); this keeps the loop readable.

A step's lines are handed to its ``bump`` (``RunnerBase.log_with_step``): call these before it,
inside the step's transaction, and they are written in the same statement as its counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from executions.llm.base import LLMResponse
    from executions.models import ExecutionStep
    from executions.runtime.base import RunnerBase
    from executions.runtime.tools_port import ToolOutcome


def log_think(runner: RunnerBase, step: ExecutionStep, response: LLMResponse) -> None:
    """The run's log line for a model answer, and its retries and fallbacks if it had any."""
    calls = [c.name for c in response.tool_calls]
    runner.log_with_step(
        "info",
        f"Model {response.provider}/{response.model} answered"
        + (f" with {len(calls)} tool call(s): {', '.join(calls)}." if calls else " with its final answer."),
        step_number=step.step_number,
        tokens=response.usage.total,
        cost=str(step.cost),
        finish_reason=response.finish_reason,
        duration_ms=step.duration_ms,
    )
    if response.attempts > 1:
        runner.log_with_step(
            "warn",
            f"The model call succeeded after {response.attempts - 1} retry(ies).",
            step_number=step.step_number,
            attempts=response.attempts,
        )
    if response.fallback_from:
        runner.log_with_step(
            "warn",
            f"Fell back to {response.provider}/{response.model} after: {'; '.join(response.fallback_from)}.",
            step_number=step.step_number,
            failed=response.fallback_from,
        )


def log_tool(runner: RunnerBase, step: ExecutionStep, outcome: ToolOutcome) -> None:
    """The run's log line for a tool call's outcome."""
    facts = {
        "step_number": step.step_number,
        "tool": step.tool_name,
        "status": outcome.status,
        "duration_ms": step.duration_ms,
        "api_calls": outcome.api_calls,
    }
    if outcome.status == "completed":
        runner.log_with_step("info", f"Tool {step.tool_name!r} completed.", **facts)
    elif outcome.status == "wait":
        runner.log_with_step("info", f"Tool {step.tool_name!r}: waiting {outcome.wait_seconds} second(s).", **facts)
    elif outcome.status == "denied":
        runner.log_with_step("warn", f"Tool {step.tool_name!r} was refused: {outcome.error}"[:2000], **facts)
    else:
        runner.log_with_step("warn", f"Tool {step.tool_name!r} failed: {outcome.error}"[:2000], **facts)
