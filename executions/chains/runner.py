"""Advancing a chain execution: one Celery task (io queue) runs steps until the chain ends
or must wait.

Each step attempt is a ``ChainStepRun``; its agent run is a workflow node
(``executions.workflows.execution_run_node``) keyed on the step run, so an advance repeated
after a crash finds the run it started instead of starting another. A step whose run waits
(approval, timer) or runs on another worker leaves the chain waiting without a worker; the
``after_execution_finished`` hook queues the next advance when that run ends.

Exclusivity: an advance holds the chain's lease (conditional UPDATE), renewed by a small
thread while a step runs in-process; only the holder writes.

A step's result is ``{output, status, error, error_code, tokens, cost, execution_id}``;
conditions and mappings read ``{"input", "vars", "steps": {id: result}}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.models import Agent, ChainExecution, ChainRunStatus, ChainStepRun, StepRunStatus
from agents.triggers.conditions import condition_parse, resolve
from agents.validation.chains import TEMPLATE, mapping_kind
from config.api.errors import ApiError
from executions import telemetry
from executions.chains.services import chain_enqueue
from executions.models import Execution
from executions.runtime.owners import worker_identity
from executions.services import execution_cancel
from executions.workflows import NodeResult, execution_run_node, node_result_of

logger = logging.getLogger(__name__)

LEASE_SECONDS = 90
MAX_PASSES = 500  # a chain has at most 50 steps x (1 + 5 retries) runs, plus fallbacks
R = ChainRunStatus
SR = StepRunStatus


def _claim(chain_execution_id: Any, owner: str) -> bool:
    now = timezone.now()
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + timedelta(seconds=0.5))
    return bool(
        ChainExecution.objects.filter(free, due, pk=chain_execution_id, status__in=[R.PENDING, R.RUNNING]).update(
            status=R.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=LEASE_SECONDS),
            next_attempt_at=None,
            started_at=Coalesce(F("started_at"), now),
        )
    )


class _LeaseKeeper:
    """Renews the chain's lease while a step runs in this process."""

    def __init__(self, chain_execution_id: Any, owner: str):
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(chain_execution_id, owner), daemon=True)

    def _run(self, chain_execution_id: Any, owner: str) -> None:
        try:
            while not self.stop_event.wait(LEASE_SECONDS / 3):
                ChainExecution.objects.filter(pk=chain_execution_id, lease_owner=owner).update(
                    lease_expires_at=timezone.now() + timedelta(seconds=LEASE_SECONDS)
                )
        finally:
            connection.close()

    def __enter__(self) -> _LeaseKeeper:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_event.set()
        self.thread.join(5)


def chain_advance(*, chain_execution_id: Any) -> None:
    """Entry point of the task: advance the chain if nobody else is."""
    owner = worker_identity()
    if not _claim(chain_execution_id, owner):
        return
    try:
        _Runner(ChainExecution.objects.select_related("parent_execution").get(pk=chain_execution_id), owner).run()
    finally:
        ChainExecution.objects.filter(pk=chain_execution_id, lease_owner=owner).update(
            lease_owner="", lease_expires_at=None
        )


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


class _Runner:
    def __init__(self, chain_execution: ChainExecution, owner: str):
        self.ce = chain_execution
        self.owner = owner
        definition = chain_execution.definition
        self.steps: list[dict[str, Any]] = definition["steps"]
        self.index = {step["id"]: i for i, step in enumerate(self.steps)}
        self.by_id = {step["id"]: step for step in self.steps}
        self.policy = definition.get("retry_policy") or {}
        handling = definition.get("error_handling") or {}
        self.default_strategy = handling.get("strategy") or "stop"
        default_target = handling.get("fallback_step") if self.default_strategy == "fallback" else None
        self.fallback: dict[str, str] = {}
        for step in self.steps:
            if (step.get("on_error") or self.default_strategy) == "fallback":
                target = step.get("fallback_step") or default_target
                if target and target != step["id"]:
                    self.fallback[step["id"]] = target
        self.fallback_only = set(self.fallback.values())

    # -- state ---------------------------------------------------------------------------

    def results(self) -> dict[str, dict[str, Any]]:
        """The latest settled result of every step (later attempts win)."""
        out: dict[str, dict[str, Any]] = {}
        for run in ChainStepRun.objects.filter(chain_execution=self.ce).order_by("id"):
            if run.is_settled:
                out[run.step_id] = self.result_of(run)
        return out

    @staticmethod
    def result_of(run: ChainStepRun) -> dict[str, Any]:
        return {
            "output": run.output,
            "status": run.status,
            "error": run.error or None,
            "error_code": run.error_code or None,
            "tokens": run.tokens,
            "cost": str(run.cost),
            "execution_id": str(run.execution_id) if run.execution_id else None,
        }

    def state(self) -> dict[str, Any]:
        return {"input": self.ce.input, "vars": self.ce.vars, "steps": self.results()}

    def inputs(self, step: dict[str, Any], state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        mapped: dict[str, Any] = {}
        for key, value in (step.get("input_mapping") or {}).items():
            kind = mapping_kind(value)
            if kind == "path":
                mapped[key] = resolve(state, condition_parse(value).tree[1])
            elif kind == "template":
                mapped[key] = TEMPLATE.sub(lambda m: _text(resolve(state, condition_parse(m.group(1)).tree[1])), value)
            else:
                mapped[key] = value
        task = mapped.pop("task", None)
        if not (isinstance(task, str) and task.strip()):
            task = self.ce.input.get("task")  # the chain's own task, if its input has one
        if not (isinstance(task, str) and task.strip()):
            task = f"Step {step['id']} of chain {self.ce.definition.get('name')}."
        return task, mapped

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        for _ in range(MAX_PASSES):
            self.ce.refresh_from_db()
            if self.ce.is_terminal:
                return
            now = timezone.now()
            if self.ce.deadline_at and now >= self.ce.deadline_at:
                self.cancel_open_child()
                self.finish(R.TIMED_OUT, "The chain ran past its timeout.", "ExecutionTimeout")
                return
            run = (
                ChainStepRun.objects.filter(chain_execution=self.ce)
                .exclude(status__in=list(_SETTLED))
                .order_by("-id")
                .first()
            )
            if run is None:
                step = self.next_step()
                if step is None:
                    self.finish(R.COMPLETED)
                    return
                run = self.new_run(step["id"], attempt=1)
            if run.status == SR.SCHEDULED and run.not_before and run.not_before > now:
                self.wait_until(run.not_before)
                return
            outcome = self.drive(run)
            if outcome is None:
                return  # the step's run goes on; its end queues the next advance
            self.settle(run, outcome)
        logger.error("chain execution %s made no progress in %d passes", self.ce.pk, MAX_PASSES)

    def next_step(self) -> dict[str, Any] | None:
        """The next normal step whose condition holds; skipped ones are recorded."""
        while self.ce.position < len(self.steps):
            step = self.steps[self.ce.position]
            if step["id"] in self.fallback_only:
                self.ce.position += 1
                continue
            condition = step.get("condition")
            if condition and not condition_parse(condition).evaluate(self.state()):
                now = timezone.now()
                ChainStepRun.objects.create(
                    chain_execution=self.ce,
                    step_id=step["id"],
                    position=self.ce.position,
                    status=SR.SKIPPED,
                    started_at=now,
                    completed_at=now,
                )
                self.ce.position += 1
                ChainExecution.objects.filter(pk=self.ce.pk).update(position=self.ce.position)
                continue
            ChainExecution.objects.filter(pk=self.ce.pk).update(position=self.ce.position)
            return step
        return None

    def new_run(self, step_id: str, *, attempt: int, fallback_for: str = "", not_before: Any = None) -> ChainStepRun:
        return ChainStepRun.objects.create(
            chain_execution=self.ce,
            step_id=step_id,
            position=self.index[step_id],
            attempt=attempt,
            fallback_for=fallback_for,
            status=SR.SCHEDULED if not_before else SR.RUNNING,
            not_before=not_before,
        )

    def wait_until(self, moment: Any) -> None:
        ChainExecution.objects.filter(pk=self.ce.pk).update(next_attempt_at=moment)
        delay = max(0.0, (moment - timezone.now()).total_seconds())
        chain_enqueue(self.ce.pk, countdown=delay)  # the beat job picks it up too

    def drive(self, run: ChainStepRun) -> NodeResult | None:
        """Start or resume the step's agent run; its NodeResult, or None while it goes on."""
        step = self.by_id[run.step_id]
        now = timezone.now()
        if run.started_at is None:
            timeout = step.get("timeout_seconds")
            run.started_at = now
            run.deadline_at = now + timedelta(seconds=timeout) if timeout else None
            run.status = SR.RUNNING
            run.save(update_fields=["started_at", "deadline_at", "status"])
        if run.execution_id is not None:
            child = Execution.objects.get(pk=run.execution_id)
            if child.is_terminal:
                timed_out = run.deadline_at is not None and now >= run.deadline_at
                return node_result_of(child, timed_out=timed_out)
            held = child.status == "running" and child.lease_expires_at is not None and child.lease_expires_at > now
            if child.status in ("waiting", "waiting_approval") or held:
                return None
        agent = Agent.objects.select_related("current_version").filter(pk=step["agent_id"]).first()
        if agent is None:
            return NodeResult(None, "error", error="The step's agent no longer exists.", error_code="AgentNotFound")
        task, context = self.inputs(step, self.state())
        remaining = (run.deadline_at - now).total_seconds() if run.deadline_at else None
        # The step's run is a child of the chain's span (it starts outside any span here).
        with _LeaseKeeper(self.ce.pk, self.owner), telemetry.within(self.ce.trace_context):
            result = execution_run_node(
                agent=agent,
                task=task,
                context=context,
                parent=self.ce.parent_execution,
                organization=self.ce.organization,
                trigger_type="chain",
                trigger_data={
                    "chain_id": str(self.ce.chain_id),
                    "chain_execution_id": str(self.ce.pk),
                    "step_id": run.step_id,
                    "attempt": run.attempt,
                    "fallback_for": run.fallback_for or None,
                },
                idempotency_key=f"chain:{self.ce.pk}:{run.pk}",
                timeout_seconds=max(remaining, 0.001) if remaining is not None else None,
                inline=True,
                wait_seconds=0,
            )
        if result.execution_id and run.execution_id is None:
            run.execution_id = result.execution_id
            run.save(update_fields=["execution"])
        if result.status == "running":
            ChainStepRun.objects.filter(pk=run.pk).update(status=SR.WAITING)
            return None
        return result

    def settle(self, run: ChainStepRun, result: NodeResult) -> None:
        """Record the step's outcome and decide what comes next (retry, fallback, go on, stop)."""
        now = timezone.now()
        with transaction.atomic():
            ce = ChainExecution.objects.select_for_update().get(pk=self.ce.pk)
            if result.status == "success":
                status = SR.COMPLETED
            elif result.error_code == "ExecutionTimeout" and run.deadline_at is not None:
                status = SR.TIMED_OUT
            else:
                status = SR.FAILED
            run.status, run.output, run.completed_at = status, result.output, now
            run.error, run.error_code = result.error or "", result.error_code or ""
            run.tokens, run.cost = result.tokens, result.cost
            run.save(update_fields=["status", "output", "completed_at", "error", "error_code", "tokens", "cost"])
            ce.tokens_total += result.tokens
            ce.cost += result.cost
            fields = ["tokens_total", "cost"]
            if ce.is_terminal:
                ce.save(update_fields=fields)
                return
            root = run.fallback_for or run.step_id
            if status == SR.COMPLETED:
                step = self.by_id[run.step_id]
                produced = self.result_of(run)
                for name, source in (step.get("output_mapping") or {}).items():
                    ce.vars[name] = resolve(produced, condition_parse(source).tree[1])
                ce.position = self.index[root] + 1
                fields += ["vars", "position"]
            else:
                fields += self.after_failure(ce, run, root)
            ce.save(update_fields=fields)
            self.ce = ce

    def after_failure(self, ce: ChainExecution, run: ChainStepRun, root: str) -> list[str]:
        retries = int(self.policy.get("max_retries") or 0)
        if run.attempt <= retries:
            delay = float(self.policy.get("backoff_seconds", 1.0)) * float(
                self.policy.get("backoff_multiplier", 2.0)
            ) ** (run.attempt - 1)
            self.new_run(
                run.step_id,
                attempt=run.attempt + 1,
                fallback_for=run.fallback_for,
                not_before=timezone.now() + timedelta(seconds=delay),
            )
            return []
        step = self.by_id[run.step_id]
        strategy = step.get("on_error") or self.default_strategy
        target = self.fallback.get(run.step_id)
        if strategy == "fallback" and target:
            self.new_run(target, attempt=1, fallback_for=root)
            return []
        if strategy == "continue":
            ce.position = self.index[root] + 1
            return ["position"]
        self._finish_on(
            ce,
            R.FAILED,
            f"Step {run.step_id!r} failed: {run.error or run.status}",
            "ChainExecutionFailed",
            failed_step=run.step_id,
            details={
                "step_id": run.step_id,
                "execution_id": str(run.execution_id) if run.execution_id else None,
                "step_error_code": run.error_code or None,
            },
        )
        return [
            "status",
            "completed_at",
            "duration_ms",
            "error",
            "error_code",
            "error_details",
            "failed_step",
            "output",
        ]

    def _finish_on(
        self,
        ce: ChainExecution,
        status: str,
        error: str = "",
        code: str = "",
        failed_step: str = "",
        details: Any = None,
    ) -> None:
        now = timezone.now()
        last = (
            ChainStepRun.objects.filter(chain_execution=ce, status=SR.COMPLETED)
            .order_by("-id")
            .values_list("output", flat=True)
            .first()
        )
        ce.status, ce.completed_at = status, now
        ce.duration_ms = int((now - (ce.started_at or ce.created_at)).total_seconds() * 1000)
        ce.error, ce.error_code, ce.failed_step, ce.error_details = error, code, failed_step, details or {}
        ce.output = {"vars": ce.vars, "result": last}
        telemetry.chain_ended(ce, status=status, error_code=code)

    def finish(self, status: str, error: str = "", code: str = "") -> None:
        with transaction.atomic():
            ce = ChainExecution.objects.select_for_update().get(pk=self.ce.pk)
            if ce.is_terminal:
                return
            self._finish_on(ce, status, error, code)
            ce.save(update_fields=["status", "completed_at", "duration_ms", "error", "error_code", "error_details",
                                   "failed_step", "output"])  # fmt: skip
            self.ce = ce

    def cancel_open_child(self) -> None:
        ids = (
            ChainStepRun.objects.filter(chain_execution=self.ce, execution__isnull=False)
            .exclude(status__in=list(_SETTLED))
            .values_list("execution_id", flat=True)
        )
        for execution in Execution.objects.filter(pk__in=list(ids)):
            if not execution.is_terminal:
                with contextlib.suppress(ApiError):  # it ended meanwhile
                    execution_cancel(execution=execution)


_SETTLED = (SR.COMPLETED, SR.FAILED, SR.TIMED_OUT, SR.SKIPPED)
