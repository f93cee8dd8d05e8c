"""What a think step sent to the model, kept for the console's trace: the messages, the tool
specs and the reference data (memories, document excerpts) the prompt carried.

Bounded (a long conversation keeps its last messages whole and says how many it left out;
each text is cut at ``MAX_TEXT_CHARS``) and redacted (key-shaped tokens masked, as in provider
errors). Tool results are already redacted when their act step is stored; the system prompt
and retrieved data are the organization's own, but a key pasted into instructions or a
memory must not be copied into one more place in the clear.
"""

from __future__ import annotations

from typing import Any

from executions.hooks import RetrievedData
from executions.llm.base import ChatMessage, ToolSpec
from executions.llm.errors import _KEY_PATTERN

MAX_TEXT_CHARS = 16_000
MAX_MESSAGES = 60
MAX_TOTAL_CHARS = 120_000


def _text(value: str | None) -> str:
    text = _KEY_PATTERN.sub("***", value or "")
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return text[:MAX_TEXT_CHARS] + f"\n… [{len(text) - MAX_TEXT_CHARS} more characters not kept]"


def _message(message: ChatMessage) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": str(message.role), "content": _text(message.content)}
    if message.tool_calls:
        entry["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": _text(c.raw_arguments) if c.raw_arguments else c.arguments}
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        entry["tool_call_id"] = message.tool_call_id
    if message.name:
        entry["name"] = message.name
    if message.is_error:
        entry["is_error"] = True
    return entry


def request_record(
    messages: list[ChatMessage], tools: list[ToolSpec], retrieved: list[RetrievedData]
) -> dict[str, Any]:
    """The stored form of one model request (ExecutionStep.request)."""
    kept = [_message(m) for m in messages]
    omitted = 0
    # The system message and the task stay; the middle of a long conversation goes first.
    while len(kept) > 2 and (len(kept) > MAX_MESSAGES or sum(len(str(m)) for m in kept) > MAX_TOTAL_CHARS):
        kept.pop(1)
        omitted += 1
    return {
        "messages": kept,
        "omitted_messages": omitted,
        "tools": [{"name": t.name, "description": _text(t.description), "parameters": t.parameters} for t in tools],
        "retrieved": [
            {"kind": item.kind, "attributes": dict(item.attributes), "content": _text(item.content)[:2000]}
            for item in retrieved
        ],
    }
