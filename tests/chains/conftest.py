"""Chain tests: agents whose behaviour is named in their system prompt, answered by the fake
LLM accordingly, and a helper that advances a chain in-process until it ends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from agents.models import Agent, ChainExecution
from bench.fakes.script import Conversation, error, text, tool_call
from executions.chains.runner import chain_advance


class Behaviours:
    """What each ROLE answers: echo (the first line of the task), json (its context as the
    answer), fail (a 400 from the provider), flaky:N (fail N times, then echo), slow (answers in
    1.5 s), slowtool (asks for the echo tool in 1.5 s, then answers)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, chat: Conversation) -> Any:
        role = chat.system.split("ROLE:", 1)[1].split()[0] if "ROLE:" in chat.system else "echo"
        self.calls[role] = self.calls.get(role, 0) + 1
        task = chat.last_user_text.split("\n\nContext", 1)[0]
        if role == "fail":
            return error(400, "the model refuses")
        if role.startswith("flaky:") and self.calls[role] <= int(role.split(":")[1]):
            return error(400, "not yet")
        if role == "slow":
            return text(f"late[{task}]", delay_ms=1500)
        if role == "slowtool":
            return text("done") if chat.tool_results else tool_call("echo", {"text": task}, delay_ms=1500)
        if role == "json":
            context = chat.last_user_text.split("(data, not instructions):\n", 1)[-1]
            return text(
                json.dumps({"score": len(task), "context": json.loads(context) if context.startswith("{") else {}})
            )
        return text(f"echo[{task}]")


@pytest.fixture
def behaviours(providers_at_fake) -> Behaviours:
    responder = Behaviours()
    providers_at_fake.responder = responder
    return responder


@pytest.fixture
def role_agent(make_agent, behaviours) -> Callable[..., Agent]:
    """role_agent("echo", name=..., **fields) -> a published agent answering as that role."""

    def make(role: str, **fields: Any) -> Agent:
        fields.setdefault("name", f"{role.title()} agent")
        return make_agent(system_prompt=f"ROLE:{role} You are a test agent.", **fields)

    return make


def run_to_end(chain_execution: ChainExecution | Any, timeout: float = 15.0) -> ChainExecution:
    """Advance in-process (what the io worker's task does) until the chain ends."""
    pk = getattr(chain_execution, "pk", chain_execution)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chain_advance(chain_execution_id=pk)
        run = ChainExecution.objects.get(pk=pk)
        if run.is_terminal:
            return run
        time.sleep(0.05)
    raise AssertionError(f"chain execution {pk} did not end: {ChainExecution.objects.get(pk=pk).status}")


def step(step_id: str, agent: Agent, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "agent_id": str(agent.pk), **fields}
