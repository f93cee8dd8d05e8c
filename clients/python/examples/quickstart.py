"""Create an agent, run it, watch its events and approve the tool call it asks for.

    pip install ./clients/python
    AGENTRY_URL=http://127.0.0.1:8000 AGENTRY_TOKEN=agt_... python clients/python/examples/quickstart.py

The agent may call ``notify_user`` (an in-app notification to whoever started the run), and a
constraint of its own holds every such call for a person's approval. The script plays that
person: when the run asks, it approves through the API, then prints the run's answer.

With no model named it uses the ``sandbox`` provider, which needs no key (what ``make run``
uses when none is set): it calls the tool the task names, then summarises. Point it at a
real model with AGENTRY_PROVIDER and AGENTRY_MODEL (e.g. ``openai`` and ``gpt-4o-mini``;
the server needs that provider's key).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from typing import Any

from agentry_client import AgentryClient, AgentryError, Event

TASK = "Use notify_user to tell me that the quarterly report is ready."


def agent_definition(provider: str, model: str) -> dict[str, Any]:
    return {
        # Agent names are unique within an organization: one new agent per run of the script.
        "name": f"Quickstart notifier {uuid.uuid4().hex[:6]}",
        "description": "Created by clients/python/examples/quickstart.py.",
        "system_prompt": "You keep people informed. Use the notify_user tool to send what you are asked to.",
        "model_config": {"provider": provider, "model": model},
        "allowed_tools": ["notify_user"],
        "constraints": [
            {"text": "Ask a person before notifying anyone.", "requires_approval_for": ["notify_user"]},
        ],
    }


def describe(event: Event) -> str:
    data = event.data if isinstance(event.data, dict) else {"data": event.data}
    if event.event == "approval_requested":
        return f"the run asks to call {data.get('tool')} with {json.dumps(data.get('input'))}"
    if event.event in ("act_completed", "act_failed"):
        return f"{data.get('tool')} -> {json.dumps(data.get('output'))[:160]}"
    if event.event == "think_completed":
        calls = ", ".join(call.get("name", "?") for call in data.get("tool_calls") or [])
        said = " ".join(str(data.get("content") or "").split())[:120]
        return (said or "(no text)") + (f" -> calls {calls}" if calls else "")
    return json.dumps(data)[:160]


def approve_pending(client: AgentryClient, execution_id: str) -> int:
    approved = 0
    for approval in client.list_approvals(execution_id=execution_id)["results"]:
        print(f"  approving: {approval['action_description']} ({approval['risk_level']} risk)")
        decided = client.approve(approval["id"], note="Approved by quickstart.py")
        print(f"  approval {decided['id']}: {decided['status']}")
        approved += 1
    return approved


def main() -> int:
    url = os.environ.get("AGENTRY_URL", "http://127.0.0.1:8000")
    token = os.environ.get("AGENTRY_TOKEN")
    if not token:
        print("Set AGENTRY_TOKEN (the API token `make run` printed on its first start).", file=sys.stderr)
        return 2
    provider = os.environ.get("AGENTRY_PROVIDER", "sandbox")
    model = os.environ.get("AGENTRY_MODEL") or ("sandbox-echo" if provider == "sandbox" else "")
    if not model:
        print("Set AGENTRY_MODEL for that provider.", file=sys.stderr)
        return 2

    with AgentryClient(url, token=token) as client:
        agent = client.create_agent(agent_definition(provider, model))
        version = client.publish_agent(agent["id"], changelog="Created by quickstart.py")
        print(f"agent {agent['id']} ({agent['name']}), version {version.get('version')}, {provider}/{model}")

        run = client.execute_agent(agent["id"], TASK)
        print(f"execution {run['id']}: {run['status']}")

        tokens: list[str] = []
        for event in client.stream_events(run["id"]):
            if event.event == "think_token":  # the model's answer word by word, live only
                tokens.append(str(event.data.get("text", "")))
                continue
            if tokens:
                print(f"  [live] {' '.join(''.join(tokens).split())}")
                tokens.clear()
            number = "-" if event.id is None else event.id  # live-only events have no number
            print(f"  #{number} {event.event}: {describe(event)}")
            if event.event == "approval_requested":
                approve_pending(client, run["id"])

        final = client.get_execution(run["id"])
        print(f"status: {final.get('status')}; {final.get('tokens_total')} tokens; ${final.get('cost')}")
        if final.get("status") != "completed":
            print(f"error: {final.get('error')}", file=sys.stderr)
            return 1
        output = final.get("output")
        print("output:", output.get("text") if isinstance(output, dict) and "text" in output else json.dumps(output))
        return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AgentryError as exc:  # the API's error shape: code, message, details, request id
        print(
            f"API error {exc.status} {exc.code}: {exc.message} {exc.details or ''} (request {exc.request_id})",
            file=sys.stderr,
        )
        sys.exit(1)
