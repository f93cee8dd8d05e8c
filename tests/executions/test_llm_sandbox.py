"""The sandbox provider: deterministic, offline, labelled, and never chosen implicitly."""

from __future__ import annotations

import json
import math
import socket

import pytest

from config.json_schema import schema_errors
from executions.llm import ProviderConfig, get_client
from executions.llm.data import RESPONSE_FORMAT_INTRO
from executions.llm.sandbox_client import SANDBOX_PREFIX, SandboxClient

SEND = {
    "name": "email_send",
    "description": "Send an email",
    "parameters": {
        "type": "object",
        "properties": {
            "to": {"type": "string"},
            "priority": {"type": "string", "enum": ["low", "high"]},
            "copies": {"type": "integer"},
            "cc": {"type": "array"},
        },
        "required": ["to", "priority", "copies"],
    },
}
SEARCH = {"name": "web_search", "description": "", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the sandbox must not open sockets")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _sandbox():
    return get_client(ProviderConfig(provider="sandbox", model="sandbox-echo"))


def test_the_registry_returns_the_sandbox_only_when_named():
    assert isinstance(_sandbox(), SandboxClient)
    assert _sandbox().sdk is None


def test_calls_the_named_tool_once_then_finishes(no_network):
    client = _sandbox()
    history = [{"role": "system", "content": "x"}, {"role": "user", "content": "Please use email_send to notify Bob"}]

    first = client.complete(history, tools=[SEARCH, SEND])

    assert first.finish_reason == "tool_calls"
    assert first.provider == "sandbox"
    assert first.content.startswith(SANDBOX_PREFIX)
    [call] = first.tool_calls
    assert call.name == "email_send"
    assert call.arguments == {"to": "Please use email_send to notify Bob", "priority": "low", "copies": 1}
    assert call.parse_error is None

    history += [first.as_message(), {"role": "tool", "tool_call_id": call.id, "name": "email_send", "content": "sent"}]
    second = client.complete(history, tools=[SEARCH, SEND])

    assert second.finish_reason == "stop"
    assert second.tool_calls == []
    assert second.content.startswith(SANDBOX_PREFIX)
    assert "No model was called" in second.content
    assert "sent" in second.content


def test_no_tool_named_means_a_labelled_summary(no_network):
    response = _sandbox().complete([{"role": "user", "content": "Summarise   the quarter"}], tools=[SEND])
    assert response.tool_calls == []
    assert response.content == f"{SANDBOX_PREFIX} No model was called. Task: Summarise the quarter"
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0


def test_the_final_answer_takes_the_shape_the_prompt_asks_for(no_network):
    schema = {
        "type": "object",
        "properties": {"summary": {"type": "string", "minLength": 1}, "score": {"type": "integer"}},
        "required": ["summary", "score"],
    }
    system = f"You report.\n\n## Response Format\n{RESPONSE_FORMAT_INTRO}{json.dumps(schema)}"
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "Weekly numbers"}]
    response = _sandbox().complete(messages, tools=[])
    answer = json.loads(response.content)
    assert answer["summary"].startswith(SANDBOX_PREFIX) and isinstance(answer["score"], int)
    assert schema_errors(schema, answer) == []


def test_deterministic(no_network):
    messages = [{"role": "user", "content": "run web_search now"}]
    first = _sandbox().complete(messages, tools=[SEARCH])
    second = _sandbox().complete(messages, tools=[SEARCH])
    first.latency_ms = second.latency_ms = 0
    assert first == second
    assert first.tool_calls[0].arguments == {}


def test_stream_matches_complete(no_network):
    messages = [{"role": "user", "content": "call web_search please"}]
    events = list(_sandbox().stream(messages, tools=[SEARCH]))
    complete = _sandbox().complete(messages, tools=[SEARCH])

    assert [e.type for e in events][-3:] == ["tool_call_delta", "tool_call", "done"]
    assert "".join(e.text for e in events if e.type == "text") == complete.content
    assert events[-1].response.tool_calls == complete.tool_calls


def test_embeddings_are_deterministic_unit_vectors(no_network):
    client = _sandbox()
    first = client.embed(["a", "b"])
    assert len(first.vectors[0]) == 384
    assert first.vectors[0] == client.embed(["a"]).vectors[0]
    assert first.vectors[0] != first.vectors[1]
    assert math.isclose(sum(x * x for x in first.vectors[0]), 1.0, abs_tol=1e-9)
    assert len(client.embed(["a"], dimensions=16).vectors[0]) == 16


# --- Realistic prompts (issue 19): chosen by description, arguments valid against the schema ----


def _builtin_specs() -> list[dict]:
    from tools.builtins.definitions import BUILTIN_TOOLS

    return [
        {"name": t["name"], "description": t["description"], "parameters": t["parameters_schema"]}
        for t in BUILTIN_TOOLS
    ]


def _run_tools(task: str) -> list:
    """The sandbox's calls for ``task`` until it answers, each tool result a plain "done"."""
    from config.json_schema import schema_errors

    specs = _builtin_specs()
    by_name = {spec["name"]: spec for spec in specs}
    history: list = [{"role": "user", "content": task}]
    calls = []
    for _ in range(6):
        response = _sandbox().complete(history, tools=specs)
        assert response.content.startswith(SANDBOX_PREFIX)
        if not response.tool_calls:
            return calls
        [call] = response.tool_calls
        assert schema_errors(by_name[call.name]["parameters"], call.arguments, formats=True) == [], call
        calls.append(call)
        history += [
            response.as_message(),
            {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": "done"},
        ]
    raise AssertionError("the sandbox kept calling tools")


def test_a_realistic_prompt_sends_an_email_and_creates_a_task(no_network):
    calls = _run_tools("E-mail ann@example.com the weekly summary and create a follow-up task for Bob")
    assert [c.name for c in calls] == ["email_send", "task_create"]
    email, task = calls
    assert email.arguments["to"] == ["ann@example.com"]
    assert email.arguments["subject"] and email.arguments["body"].startswith("E-mail ann@example.com")
    assert task.arguments["title"].startswith("E-mail ann@example.com")


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("Send an email to the customer about the refund", ["email_send"]),
        ("Search the web for Agentry pricing", ["web_search"]),
        ("Schedule a meeting with ann@example.com on 2026-12-10T14:00:00Z", ["calendar_create_event"]),
        ("Remind me to call the bank", ["notify_user"]),
        ("Summarise the quarter in three sentences", []),
    ],
)
def test_tools_are_chosen_by_what_the_task_asks(no_network, task, expected):
    calls = _run_tools(task)
    assert [c.name for c in calls] == expected
    if expected == ["email_send"]:
        assert calls[0].arguments["to"] == ["recipient@example.com"]  # a reserved domain, never delivered
    if expected == ["calendar_create_event"]:
        arguments = calls[0].arguments
        assert arguments["start_time"] == "2026-12-10T14:00:00+00:00" and arguments["attendees"] == ["ann@example.com"]
        assert arguments["end_time"] == "2026-12-10T15:00:00+00:00"


def test_an_optional_value_that_does_not_fit_is_left_out(no_network):
    from executions.llm.sandbox_tools import fill_arguments

    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "count": {"type": "integer", "minimum": 1, "maximum": 5}},
        "required": ["title"],
        "additionalProperties": False,
    }
    assert fill_arguments(schema, "Make 3 of them") == {"title": "Make 3 of them", "count": 3}
    assert fill_arguments(schema, "Make 30 of them") == {"title": "Make 30 of them"}  # 30 is out of range
