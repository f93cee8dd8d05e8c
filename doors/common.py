"""What every protocol door shares: which agent a token may run, a run started as an ordinary
execution (priced, quota-checked, durable) with the door's trigger type, waiting for it or
following its live events, and what a run parked for approval tells the caller.

The doors add no state of their own: a door's request *is* an execution, and its answer is
read back from that execution, so a response fetched later (``GET /openai/v1/responses/{id}``,
A2A ``tasks/get``) tells what the run did since.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from accounts.access import Actor
from agents.models import Agent
from agents.selectors import (
    agent_get_for_execution,
    agent_is_runnable,
    agent_list_executable,
    agent_not_found,
    platform_agent_list,
)
from config.api.errors import NotFound
from config.api.ids import uuid_or_none
from config.db import connection_release
from config.site import answer_base_url
from executions import selectors, services
from executions.api.sse import FINAL_EVENTS, KEEPALIVE, execution_events
from executions.models import Execution, ExecutionEvent, ExecutionStatus

S = ExecutionStatus
# A door's run stops being followed when it ends or parks for a person.
PARKED_EVENT = "approval_requested"
FOLLOW_UNTIL = FINAL_EVENTS | {PARKED_EVENT}
# A synchronous answer waits at most this long (the agent's timeout_seconds plus a margin,
# capped): a longer run is answered as still running, and can be fetched later.
MAX_WAIT_SECONDS = 900
MAX_HISTORY_MESSAGES = 100


def door_agents(*, actor: Actor) -> list[Agent]:
    """The runnable agents the token may execute (the ``agents:execute`` scope and the execute
    right, as at the MCP door), then the platform's. An OpenAI ``models`` list."""
    if not actor.has_scope("agents:execute"):
        return []
    platform = [a for a in platform_agent_list().order_by("slug") if agent_is_runnable(a)]
    return agent_list_executable(actor=actor) + (platform if actor.has_perm("agents.execute_agent") else [])


def door_agent(*, actor: Actor, ref: Any) -> Agent:
    """The agent ``ref`` (an id or a slug) names for the actor, when the actor may run it.

    The organization's agent wins over a platform agent with the same slug; another
    organization's agent does not exist here (AgentNotFound, 404)."""
    ref = str(ref or "").strip()
    if not ref:
        raise agent_not_found()
    pk = uuid_or_none(ref)
    if pk is None:
        found = (
            Agent.objects.filter(Q(organization=actor.organization) | Q(organization__isnull=True))
            .filter(slug=ref, deleted_at__isnull=True)
            .order_by("organization_id")  # NULLs last: the organization's own first
            .values_list("pk", flat=True)
            .first()
        )
        if found is None:
            raise agent_not_found(ref)
        pk = found
    return agent_get_for_execution(actor=actor, agent_id=pk)


def door_start(
    *,
    actor: Actor,
    agent: Agent,
    trigger_type: str,
    task: str,
    context: dict[str, Any] | None = None,
    trigger_data: dict[str, Any] | None = None,
    history: list[dict[str, str]] | None = None,
    caller_instructions: str = "",
    max_tokens: int | None = None,
    temperature: float | None = None,
    conversation_id: Any = None,
) -> Execution:
    """An ordinary execution of ``agent`` for the door: the REST API's checks, quota and price."""
    if history is not None and len(history) > MAX_HISTORY_MESSAGES:
        history = history[-MAX_HISTORY_MESSAGES:]
    execution, _ = services.execution_start(
        agent=agent,
        organization=actor.organization,
        task=task,
        context=context,
        actor=actor,
        trigger_type=trigger_type,
        trigger_data=trigger_data or {},
        history=history,
        caller_instructions=caller_instructions,
        max_tokens=max_tokens,
        temperature=temperature,
        conversation_id=conversation_id,
    )
    return execution


def door_execution(*, actor: Actor, execution_id: Any, trigger_type: str | None = None) -> Execution:
    """One of the actor's runs (another organization's: NotFound), of this door when given."""
    execution = selectors.execution_get(actor=actor, execution_id=execution_id)
    if trigger_type is not None and execution.trigger_type != trigger_type:
        raise NotFound("Not found.", details={"id": str(execution_id)})
    return execution


def wait_seconds(execution: Execution) -> float:
    limits = (execution.config or {}).get("limits") or {}
    return float(min(MAX_WAIT_SECONDS, int(limits.get("timeout_seconds") or 120) + 30))


def door_wait(execution: Execution, seconds: float | None = None) -> Execution:
    """Until the run ends or waits for a person (or ``seconds`` pass); a connection is not held
    while sleeping (the web process's pool is small)."""
    deadline = time.monotonic() + (wait_seconds(execution) if seconds is None else seconds)
    interval = 0.05
    while True:
        execution.refresh_from_db()
        if execution.is_terminal or execution.status == S.WAITING_APPROVAL or time.monotonic() >= deadline:
            return execution
        connection_release()
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 0.5)


@dataclass(frozen=True)
class Parked:
    """A run waiting for a person's decision on a tool call."""

    approval_id: str
    tool: str
    url: str
    expires_at: str = ""
    reason: str = ""

    def sentence(self) -> str:
        return (
            f"This run is waiting for a person's approval of the tool call {self.tool!r}. "
            f"An approver decides at {self.url}; the run continues after the decision."
        )


def absolute(link: str, base_url: str = "") -> str:
    return f"{answer_base_url(base_url)}{link}" if link.startswith("/") else link


def parked(execution: Execution, base_url: str = "") -> Parked | None:
    """The approval a run waits for, from its persisted ``approval_requested`` event."""
    if execution.status != S.WAITING_APPROVAL:
        return None
    data = (
        ExecutionEvent.objects.filter(execution=execution, event=PARKED_EVENT)
        .order_by("-seq")
        .values_list("data", flat=True)
        .first()
    ) or {}
    return parked_from_event(data, base_url)


def parked_from_event(data: dict[str, Any], base_url: str = "") -> Parked:
    approval = data.get("approval") or {}
    return Parked(
        approval_id=str(approval.get("approval_id", "")),
        tool=str(data.get("tool", "")),
        url=absolute(str(approval.get("url") or "/approvals/"), base_url),
        expires_at=str(approval.get("expires_at", "")),
        reason=str(approval.get("reason", "")),
    )


def output_text(output: Any) -> str:
    """A run's output as text: its text, or its structured output (output_schema) as JSON."""
    if isinstance(output, dict) and set(output) == {"text"}:
        return str(output["text"])
    return "" if output is None else json.dumps(output, default=str)


def answer_text(execution: Execution) -> str:
    return execution.result_text or output_text(execution.output)


def error_sentence(execution: Execution) -> str:
    return f"The run ended {execution.status}" + (f": {execution.error}" if execution.error else ".")


@dataclass
class Followed:
    """What following a run's events produced: text deltas as they came, then the end."""

    kind: str  # "delta", "status", "parked", "end", "keepalive"
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class StreamedAnswer:
    """The text the model streamed in the run's latest think step: only that step's text can
    be the answer's beginning, so at the end a door sends what it did not stream yet."""

    step: Any = None
    text: str = ""

    def add(self, delta: Followed) -> bool:
        """Take a delta; whether it continues text this step already streamed."""
        step = delta.data.get("step_number")
        if step != self.step:
            self.step, self.text = step, ""
        continues = bool(self.text)
        self.text += delta.text
        return continues

    def rest(self, answer: str) -> str | None:
        """What of ``answer`` was not streamed; None when what was streamed is not its beginning
        (a step that thought aloud before calling a tool)."""
        return answer[len(self.text) :] if answer.startswith(self.text) else None


async def door_follow(execution_id: Any) -> AsyncIterator[Followed]:
    """A run's live events as a door needs them: token deltas (live only: a run whose model
    call started before we subscribed has none; its whole answer comes with the end),
    status changes, a park for approval, the end."""
    async for _seq, event, data in execution_events(execution_id, until=FOLLOW_UNTIL):
        if event == KEEPALIVE:
            yield Followed("keepalive")
        elif event == "think_token":
            yield Followed("delta", text=str(data.get("text", "")), data={"step_number": data.get("step_number")})
        elif event == "status":
            yield Followed("status", data=data)
        elif event == PARKED_EVENT:
            yield Followed("parked", data=data)
        elif event in FINAL_EVENTS:
            yield Followed("end", data=data)
