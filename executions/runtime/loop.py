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
``lease_expires_at``), taken with a conditional UPDATE and renewed at every step; a worker
that loses its lease stops at the next step boundary without writing anything more.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import kombu.exceptions
import redis.exceptions
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from billing.pricing import call_cost
from billing.usage import usage_count
from config.call_count import counting
from config.logging import log_context_var
from executions import streaming, telemetry
from executions.llm.base import LLMResponse, ToolSpec
from executions.llm.errors import LLMError
from executions.llm.registry import complete_with_fallback, stream_with_fallback
from executions.models import (
    Execution,
    ExecutionEvent,
    ExecutionLog,
    ExecutionStatus,
    ExecutionStep,
    StepStatus,
    StepType,
)
from executions.providers import resolve_providers
from executions.runtime import chaos, finish, owners, recorded, records, shutdown
from executions.runtime import context as ctx
from executions.runtime.owners import owner_is_gone, worker_identity
from executions.runtime.tools_port import ToolContext, ToolOutcome, bound_tool_output, tool_port

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


@dataclass
class EventBuffer:
    """Events of the current step: persisted with the step's commit, published after it."""

    execution_id: Any
    seq: int
    pending: list[ExecutionEvent] = field(default_factory=list)

    def add(self, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        self.pending.append(ExecutionEvent(execution_id=self.execution_id, seq=self.seq, event=event, data=data))

    def flush(self) -> None:
        """Call inside the transaction that commits the step."""
        if not self.pending:
            return
        events, self.pending = self.pending, []
        ExecutionEvent.objects.bulk_create(events)
        payload = [{"id": e.seq, "event": e.event, "data": e.data} for e in events]
        transaction.on_commit(lambda: streaming.publish(self.execution_id, payload))


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


class Runner:
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
        from executions import hooks

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

    # -- bookkeeping ------------------------------------------------------------------

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

    def bump(self, counters: dict[str, Any], action: dict[str, Any] | None = None) -> None:
        """Add to the run's counters, renew the lease and read the cancel flag: one statement.

        Called inside a step's committing transaction; raises LeaseLost (rolling the step
        back) when another worker has taken the run over. The cancel flag it reads makes the
        next ``checkpoint`` free of a query of its own.
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
        sets.append("lease_expires_at = %s")
        params += [timezone.now() + timedelta(seconds=settings.EXECUTION_LEASE_SECONDS), self.execution.pk, self.owner]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE executions_execution SET {', '.join(sets)}"  # noqa: S608
                " WHERE id = %s AND lease_owner = %s AND status = 'running' RETURNING cancel_requested",
                params,
            )
            row = cursor.fetchone()
        if row is None:
            raise LeaseLost
        self.cancel_seen = (bool(row[0]), time.monotonic())

    def checkpoint(self) -> None:
        """Renew the lease and read the cancel flag; end on cancel/timeout.

        Right after a step committed (``bump``), its answer is fresh and no query is needed.
        """
        seen = getattr(self, "cancel_seen", None)
        if seen is not None and time.monotonic() - seen[1] < 1.0:
            cancelled = seen[0]
        else:
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE executions_execution SET lease_expires_at = %s"
                    " WHERE id = %s AND lease_owner = %s AND status = 'running' RETURNING cancel_requested",
                    [
                        timezone.now() + timedelta(seconds=settings.EXECUTION_LEASE_SECONDS),
                        self.execution.pk,
                        self.owner,
                    ],
                )
                row = cursor.fetchone()
            if row is None:
                raise LeaseLost
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

    def log_unoffered_tools(self) -> None:
        """Say, once per run, which allowed tools the model will not be offered and why (a
        missing capability grant or module): the run's log is where a user looks first."""
        unoffered = getattr(self.port, "unoffered", None)
        gaps = unoffered(context=self.tool_context(self.next_step_number)) if unoffered else []
        if gaps:
            names = ", ".join(gap["tool"] for gap in gaps)
            self.log(
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

    # -- the loop -------------------------------------------------------------------

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

    def hand_back(self) -> None:
        """Release the lease (claimable at once, no retry counted) and queue the run again."""
        from executions.tasks import enqueue_execution

        released = Execution.objects.filter(pk=self.execution.pk, lease_owner=self.owner, status=S.RUNNING).update(
            lease_owner="", lease_expires_at=None
        )
        if not released:
            return
        self.log("info", "Handed back at worker shutdown; another worker resumes from here.")
        enqueue_execution(self.execution.pk)
        logger.info("handed execution %s back at worker shutdown", self.execution.pk)

    def start_or_resume(self) -> None:
        if not self.steps:
            timeout = int(self.limits.get("timeout_seconds", 120))
            deadline = (self.execution.started_at or timezone.now()) + timedelta(seconds=timeout)
            Execution.objects.filter(pk=self.execution.pk).update(deadline_at=deadline)
            self.execution.deadline_at = deadline
            with transaction.atomic():
                self.log(
                    "info",
                    "Run started.",
                    trigger_type=self.execution.trigger_type,
                    agent_version_id=str(self.execution.agent_version_id),
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
                    self.log("warn", warning)
                self.log_unoffered_tools()
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
        from types import SimpleNamespace

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

    # -- think ---------------------------------------------------------------------

    def think(self) -> LLMResponse:
        from billing.quotas import check_before_llm_call

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
        self.publish_now("step_started", {"step_number": step.step_number, "step_type": "think"})
        self.publish_now("think_started", {"step_number": step.step_number})
        with telemetry.chat_span(
            self.execution, configs=self.providers.configs, messages=messages, step_number=step.step_number
        ) as span:
            response = self.call_model_or_stop(messages, tools, step)
            self.count_connection_tokens(response)
            self.complete_think(step, response)
            telemetry.chat_answered(span, response, step.cost)
        chaos.boundary("after_think")
        return response

    def call_model_or_stop(self, messages: list, tools: list[ToolSpec], step: ExecutionStep) -> LLMResponse:
        try:
            return self.call_model(messages, tools, step)
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

    def call_model(self, messages: list, tools: list[ToolSpec], step: ExecutionStep) -> LLMResponse:
        configs = self.admitted_configs()
        release_connection_during_wait()
        kwargs: dict[str, Any] = {
            "tools": tools or None,
            "temperature": self.model_config.get("temperature"),
            "max_tokens": self.execution.max_tokens or self.model_config.get("max_tokens"),
            "top_p": self.model_config.get("top_p"),
            "extra": self.model_config.get("extra") or None,
        }
        if not streaming.has_subscribers(self.execution.pk):
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
        from executions import ratelimit

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
        from executions import ratelimit

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
            self.bump(
                {
                    "tokens_input": usage.input_tokens,
                    "tokens_output": usage.output_tokens,
                    "tokens_cached": usage.cached_input_tokens,
                    "tokens_total": usage.total,
                    "llm_calls": 1,
                    "api_calls_count": 1,
                    "cost": cost,
                }
            )
            from billing.usage import usage_record_llm_call

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
                },
            )
            self.events.add("step_completed", {"step_number": step.step_number, "step_type": "think"})
            self.events.flush()
            records.log_think(self, step, response)
            if response.nul_replaced:
                # Replaced where the answer entered the platform (executions/llm/data.py).
                self.log(
                    "warn",
                    f"The model's answer contained {response.nul_replaced} NUL character(s) (U+0000), which"
                    " cannot be stored; each was replaced with U+FFFD.",
                    step_number=step.step_number,
                )
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

    # -- act -----------------------------------------------------------------------

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
            self.publish_now("step_started", {"step_number": step.step_number, "step_type": "act"})
            self.publish_now("act_started", {"step_number": step.step_number, "tool": call["name"], "input": arguments})
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
                self.log(
                    "warn",
                    f"The answer of {step.tool_name!r} had {outcome.replaced} value(s) that cannot be stored (a NUL character"
                    " became U+FFFD; NaN or an infinity became a string).",
                    step_number=step.step_number,
                )
            counted = outcome.status in ("completed", "wait")
            if counted:
                usage_count(organization=self.execution.organization, agent_id=self.execution.agent_id, tool_calls=1)
            self.bump(
                {"tool_calls": 1 if counted else 0, "api_calls_count": outcome.api_calls},
                action={"step_number": step.step_number, "tool": step.tool_name, "status": outcome.status},
            )
            name = "act_completed" if outcome.status in ("completed", "wait") else "act_failed"
            self.events.add(name, {"step_number": step.step_number, "tool": step.tool_name, "output": step.tool_output})
            self.events.add("step_completed", {"step_number": step.step_number, "step_type": "act"})
            self.events.flush()
            records.log_tool(self, step, outcome)
            if outcome.status == "wait":
                finish.start_waiting(self, outcome.wait_seconds or 1)
        return outcome.status == "wait"

    def publish_now(self, event: str, data: dict[str, Any]) -> None:
        # "started" events are live-only: the persisted stream has the completed ones.
        streaming.publish(self.execution.pk, [{"event": event, "data": data}])

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
