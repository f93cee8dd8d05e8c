"""Act: the tool calls of one think step, each committed as a started step before it runs and
completed after it (or held for a person, or waiting for a timer)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.usage import usage_count
from config.call_count import counting
from executions import telemetry
from executions.llm.base import LLMResponse
from executions.models import (
    ExecutionStatus,
    ExecutionStep,
    StepStatus,
    StepType,
)
from executions.runtime import chaos, finish, records
from executions.runtime.base import RunnerBase
from executions.runtime.tools_port import ToolOutcome, bound_tool_output

logger = logging.getLogger(__name__)

S = ExecutionStatus


class ActSteps(RunnerBase):
    def act(self, response: LLMResponse) -> bool:
        return self.act_on_calls([c.as_dict() for c in response.tool_calls])

    def act_on_calls(self, calls: list[dict[str, Any]]) -> bool:
        """Run the calls of one think step; True when the run now waits (timer or approval)."""
        limit = int(self.limits.get("max_tool_calls_per_step", 3))
        already = sum(
            1 for s in self.steps if s.step_type == StepType.ACT and s.tool_call_id in {c["id"] for c in calls}
        )
        for index, call in enumerate(calls):
            self.checkpoint()
            arguments = call.get("arguments")
            step = self.new_step(StepType.ACT, tool_name=call["name"], tool_call_id=call["id"], tool_input=arguments)
            self.publish_now(
                ("step_started", {"step_number": step.step_number, "step_type": "act"}),
                ("act_started", {"step_number": step.step_number, "tool": call["name"], "input": arguments}),
            )
            if already + index >= limit:
                outcome = ToolOutcome("failed", error=f"Skipped: at most {limit} tool calls per step.")
            elif arguments is None:
                outcome = ToolOutcome(
                    "failed",
                    error=f"Your arguments could not be used: {call.get('parse_error') or 'unparseable'}. Call the tool again with valid JSON.",
                )
            else:
                checked = self.port.check(
                    context=self.tool_context(step.step_number), name=call["name"], arguments=arguments
                )
                outcome = checked if checked is not None else self.run_tool(step, call["name"], arguments)
            if self.record_tool(step, outcome):
                return True
            chaos.boundary("after_tool")
        return False

    def run_tool(self, step: ExecutionStep, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        chaos.boundary("before_tool")
        with (
            telemetry.tool_span(
                self.execution, name=name, call_id=step.tool_call_id, arguments=arguments, step_number=step.step_number
            ) as span,
            counting() as calls,
        ):
            try:
                outcome = self.port.run(context=self.tool_context(step.step_number), name=name, arguments=arguments)
            except Exception as exc:  # a tool's own failure is told to the model, not fatal to the run
                logger.warning("tool %s failed", name, exc_info=True)
                outcome = ToolOutcome("failed", error=f"{type(exc).__name__}: {exc}"[:1000])
            telemetry.tool_answered(span, outcome)
        outcome.api_calls += calls.calls
        return outcome

    def record_tool(self, step: ExecutionStep, outcome: ToolOutcome) -> bool:
        """Persist a tool outcome; True when the run must now wait."""
        if outcome.status == "needs_approval":
            finish.await_approval(self, step, outcome)
            return True
        now = timezone.now()
        if outcome.status == "completed":
            output = bound_tool_output(outcome.output)
            step.status, step.tool_output, step.is_error = StepStatus.COMPLETED, output, False
        elif outcome.status == "wait":
            step.status, step.tool_output, step.is_error = (
                StepStatus.COMPLETED,
                {"waited_seconds": outcome.wait_seconds},
                False,
            )
        else:
            step.status = StepStatus.FAILED
            step.tool_output, step.is_error = {"error": outcome.error, "status": outcome.status}, True
        step.completed_at = now
        step.duration_ms = int((now - step.started_at).total_seconds() * 1000)
        with transaction.atomic():
            step.save(update_fields=["status", "tool_output", "is_error", "completed_at", "duration_ms"])
            if outcome.replaced:
                # Replaced by the gateway (tools/gateway.py), which made the answer storable.
                self.log_with_step(
                    "warn",
                    f"The answer of {step.tool_name!r} had {outcome.replaced} value(s) that cannot be stored (a NUL character"
                    " became U+FFFD; NaN or an infinity became a string).",
                    step_number=step.step_number,
                )
            counted = outcome.status in ("completed", "wait")
            if counted:
                usage_count(organization=self.execution.organization, agent_id=self.execution.agent_id, tool_calls=1)
            records.log_tool(self, step, outcome)
            self.bump(
                {"tool_calls": 1 if counted else 0, "api_calls_count": outcome.api_calls},
                action={"step_number": step.step_number, "tool": step.tool_name, "status": outcome.status},
            )
            name = "act_completed" if outcome.status in ("completed", "wait") else "act_failed"
            self.events.add(name, {"step_number": step.step_number, "tool": step.tool_name, "output": step.tool_output})
            self.events.add("step_completed", {"step_number": step.step_number, "step_type": "act"})
            self.events.flush()
            if outcome.status == "wait":
                finish.start_waiting(self, outcome.wait_seconds or 1)
        return outcome.status == "wait"
