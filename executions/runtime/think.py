"""Think: one model call per step — the step committed before the call, the answer, its usage
and its cost committed after it in one transaction, with the lease renewed in the same
statement; a final answer checked against the output schema (one corrective turn)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.pricing import call_cost
from billing.quotas import check_before_llm_call
from billing.usage import usage_record_llm_call
from executions import ratelimit, streaming, telemetry
from executions.llm.base import LLMResponse, ToolSpec
from executions.llm.errors import LLMError
from executions.llm.registry import complete_with_fallback, stream_with_fallback
from executions.llm.sandbox_client import SandboxClient
from executions.models import (
    ExecutionStatus,
    ExecutionStep,
    StepStatus,
    StepType,
)
from executions.runtime import chaos, finish, recorded, records
from executions.runtime import context as ctx
from executions.runtime.base import RunnerBase
from executions.runtime.lease import release_connection_during_wait

logger = logging.getLogger(__name__)

S = ExecutionStatus


class ThinkSteps(RunnerBase):
    def think(self) -> LLMResponse:
        problem = check_before_llm_call(organization=self.execution.organization)
        if problem is not None:
            # A limit crossed mid-run: no call after the cap.
            raise finish.Stop(S.FAILED, problem.message, "ResourceExhausted", problem.details)
        chaos.boundary("before_think")
        tools = self.port.specs(context=self.tool_context(self.next_step_number))
        messages = ctx.conversation(
            config=self.config,
            execution=self.execution,
            steps=self.steps,
            tools=tools,
            history=self.history,
            retrieved=self.retrieved,
        )
        step = self.new_step(
            StepType.THINK,
            input_text=messages[-1].content or "",
            request=recorded.request_record(messages, tools, self.retrieved),
        )
        # Who received these is who watches: the answer decides streaming (no NUMSUB of its own).
        watchers = self.publish_now(
            ("step_started", {"step_number": step.step_number, "step_type": "think"}),
            ("think_started", {"step_number": step.step_number}),
        )
        with telemetry.chat_span(
            self.execution, configs=self.providers.configs, messages=messages, step_number=step.step_number
        ) as span:
            response = self.call_model_or_stop(messages, tools, step, stream=watchers > 0)
            self.count_connection_tokens(response)
            self.complete_think(step, response)
            telemetry.chat_answered(span, response, step.cost)
        chaos.boundary("after_think")
        return response

    def call_model_or_stop(
        self, messages: list, tools: list[ToolSpec], step: ExecutionStep, *, stream: bool = False
    ) -> LLMResponse:
        try:
            return self.call_model(messages, tools, step, stream=stream)
        except LLMError as error:
            self.fail_step(step, str(error))
            self.log(
                "error",
                f"The model call failed: {error}",
                step_number=step.step_number,
                provider_error=type(error).__name__,
                attempts=getattr(error, "attempts", 1),
                fallback_attempts=[a.config.label for a in getattr(error, "fallback_attempts", []) or []],
            )
            raise finish.Stop(
                S.FAILED,
                str(error),
                "ExecutionFailed",
                {
                    "provider_error": type(error).__name__,
                    "attempts": [a.config.label for a in getattr(error, "fallback_attempts", []) or []],
                },
            ) from error

    def call_model(
        self, messages: list, tools: list[ToolSpec], step: ExecutionStep, *, stream: bool = False
    ) -> LLMResponse:
        """The model's answer; streamed token by token to the run's live viewers when ``stream``
        (somebody subscribed when the step's "started" events were published)."""
        configs = self.admitted_configs()
        release_connection_during_wait()
        kwargs: dict[str, Any] = {
            "tools": tools or None,
            "temperature": self.model_config.get("temperature"),
            "max_tokens": self.execution.max_tokens or self.model_config.get("max_tokens"),
            "top_p": self.model_config.get("top_p"),
            "extra": self.model_config.get("extra") or None,
        }
        if not stream:
            return complete_with_fallback(configs, messages, **kwargs).response
        # Somebody watches: stream tokens to them as they come (not persisted).
        final: LLMResponse | None = None
        for event in stream_with_fallback(configs, messages, **kwargs):
            if event.type == "text" and event.text:
                streaming.publish(
                    self.execution.pk,
                    [{"event": "think_token", "data": {"step_number": step.step_number, "text": event.text}}],
                )
            elif event.type == "done":
                final = event.response
        if final is None:
            raise LLMError(
                "the provider's stream ended without a final response",
                provider=configs[0].provider,
                model=configs[0].model,
            )
        return final

    def admitted_configs(self) -> list:
        """The provider configs whose connection limits admit a request now, in order.

        A connection over its requests- or tokens-per-minute limit is skipped in favour of the
        next fallback; when none is free, wait for the next window (within the run's deadline).
        """
        while True:
            admitted, waits = [], []
            for config in self.providers.configs:
                limit = self.providers.limits.get(config.label)
                wait = ratelimit.try_acquire(limit[0], rpm=limit[1], tpm=limit[2]) if limit else 0.0
                if wait == 0.0:
                    admitted.append(config)
                    break  # one request counted is enough; later fallbacks are tried unmetered
                waits.append(wait)
            if admitted:
                index = self.providers.configs.index(admitted[0])
                return self.providers.configs[index:]
            wait = min(waits)
            deadline = self.execution.deadline_at
            if deadline is not None and timezone.now() + timedelta(seconds=wait) >= deadline:
                raise finish.Stop(
                    S.FAILED,
                    "Every configured provider connection is at its per-minute limit.",
                    "ResourceExhausted",
                    {"retry_after_seconds": round(wait, 1)},
                )
            self.log("info", "Provider connection at its per-minute limit; waiting.", seconds=round(wait, 1))
            time.sleep(wait)

    def count_connection_tokens(self, response: LLMResponse) -> None:
        for config in self.providers.configs:
            if config.provider == response.provider and config.model == response.model:
                limit = self.providers.limits.get(config.label)
                if limit and limit[2]:
                    ratelimit.add_tokens(limit[0], response.usage.total)
                return

    def complete_think(self, step: ExecutionStep, response: LLMResponse) -> None:
        usage = response.usage
        cost = call_cost(
            provider=response.provider,
            model=response.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_input_tokens,
        )
        now = timezone.now()
        step.status = StepStatus.COMPLETED
        step.output_text = response.content or ""
        step.reasoning = response.content if response.tool_calls else ""
        step.llm_tool_calls = [c.as_dict() for c in response.tool_calls]
        step.provider, step.model = response.provider, response.model
        step.finish_reason = response.finish_reason
        step.tokens_input, step.tokens_output, step.tokens_used = usage.input_tokens, usage.output_tokens, usage.total
        step.cost = cost
        step.completed_at = now
        # From the step's own timestamps, so the trace's duration and times agree (the
        # provider's latency leaves out rate-limit waits and retries).
        step.duration_ms = max(0, int((now - step.started_at).total_seconds() * 1000))
        step.attempts = min(response.attempts, 32767)
        # The offline sandbox answers without any model: counted apart (sandbox_calls), so
        # llm_calls and api_calls_count stay the number of real model calls.
        sandbox = response.provider == SandboxClient.provider
        calls = {"sandbox_calls": 1} if sandbox else {"llm_calls": 1, "api_calls_count": 1}
        with transaction.atomic():
            step.save(
                update_fields=[
                    "attempts",
                    "status",
                    "output_text",
                    "reasoning",
                    "llm_tool_calls",
                    "provider",
                    "model",
                    "finish_reason",
                    "tokens_input",
                    "tokens_output",
                    "tokens_used",
                    "cost",
                    "completed_at",
                    "duration_ms",
                ]
            )
            records.log_think(self, step, response)
            if response.nul_replaced:
                # Replaced where the answer entered the platform (executions/llm/data.py).
                self.log_with_step(
                    "warn",
                    f"The model's answer contained {response.nul_replaced} NUL character(s) (U+0000), which"
                    " cannot be stored; each was replaced with U+FFFD.",
                    step_number=step.step_number,
                )
            self.bump(
                {
                    "tokens_input": usage.input_tokens,
                    "tokens_output": usage.output_tokens,
                    "tokens_cached": usage.cached_input_tokens,
                    "tokens_total": usage.total,
                    **calls,
                    "cost": cost,
                }
            )

            usage_record_llm_call(
                execution=self.execution,
                step=step,
                provider=response.provider,
                model=response.model,
                usage=usage,
                cost=cost,
            )
            self.events.add(
                "think_completed",
                {
                    "step_number": step.step_number,
                    "content": step.output_text,
                    "tool_calls": [{"id": c.id, "name": c.name} for c in response.tool_calls],
                    "tokens": usage.total,
                    "cost": str(cost),
                    "provider": response.provider,
                    "model": response.model,
                    "sandbox": sandbox,
                },
            )
            self.events.add("step_completed", {"step_number": step.step_number, "step_type": "think"})
            self.events.flush()
        self.execution.cost += cost
        self.execution.tokens_total += usage.total

    def fail_step(self, step: ExecutionStep, message: str) -> None:
        step.status, step.output_text, step.is_error = StepStatus.FAILED, message[:2000], True
        step.completed_at = timezone.now()
        step.save(update_fields=["status", "output_text", "is_error", "completed_at"])

    def accept_answer(self, response: LLMResponse) -> bool:
        """Validate a final answer against output_schema; ask once more when it does not match."""
        schema = self.config.get("output_schema")
        if not schema:
            return True
        problem = finish.output_problem(response.content, schema)
        if problem is None:
            return True
        if any(step.step_type == StepType.REFLECT for step in self.steps):
            # One correction, as documented: a model that cannot give the shape after being
            # told once would otherwise be asked until max_steps_per_run.
            raise finish.Stop(
                ExecutionStatus.FAILED,
                f"The answer does not match the output schema after one correction ({problem}).",
                "OutputSchemaMismatch",
                {"problem": problem},
            )
        with transaction.atomic():
            self.new_step(
                StepType.REFLECT,
                status=StepStatus.COMPLETED,
                input_text=f"Your answer does not match the required JSON Schema ({problem}). Answer again with JSON only.",
                output_text=problem,
                completed_at=timezone.now(),
            )
            self.events.add("reflect_completed", {"problem": problem})
            self.log("warn", f"The answer does not match the output schema ({problem}); asked again.")
            self.events.flush()
        return False
