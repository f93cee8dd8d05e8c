"""SANDBOX provider: deterministic, offline, no model at all. For demos and trials only.

Every answer starts with "[sandbox]" so nobody mistakes it for a model's work, and the
registry only returns it when a config names ``provider="sandbox"`` explicitly: it is never
a silent fallback. Behaviour, so a demo agent runs the whole loop (think -> act -> think):

- tools offered: call the one the latest user message is most about (by its name and
  description, ``sandbox_tools.choose_tool``) that was not called for that message yet, with
  arguments taken from the message and valid against the tool's schema (up to three tools
  per message, one per turn);
- otherwise answer with a short summary of the task and of any tool results.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from collections.abc import Iterator
from typing import ClassVar

from .base import (
    ChatMessage,
    CompletionRequest,
    EmbeddingResult,
    LLMClient,
    LLMResponse,
    StreamEvent,
    ToolCallRequest,
    Usage,
)
from .data import RESPONSE_FORMAT_INTRO
from .sandbox_tools import choose_tool, fill_arguments

SANDBOX_PREFIX = "[sandbox]"
SANDBOX_EMBED_DIMENSIONS = 384  # the local embedder's size, so sandbox vectors fit the same column


def _estimate_tokens(text: str) -> int:
    # ~4 characters per token for English text: good enough for a demo's usage numbers.
    return max(1, math.ceil(len(text) / 4))


class SandboxClient(LLMClient):
    provider: ClassVar[str] = "sandbox"
    supports_embeddings: ClassVar[bool] = True

    def _decide(self, request: CompletionRequest) -> LLMResponse:
        messages = request.messages
        last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
        task = (messages[last_user].content or "") if last_user >= 0 else ""
        since = messages[last_user + 1 :]
        results = [m for m in since if m.role == "tool"]
        called = [call.name for m in since if m.role == "assistant" for call in m.tool_calls]
        prompt_text = json.dumps([[m.role, m.content] for m in messages])
        tool = choose_tool(request.tools, task, called=called)
        if tool is not None:
            arguments = fill_arguments(tool.parameters, task)
            digest = hashlib.sha256(f"{tool.name}:{len(called)}:{task}".encode()).hexdigest()[:12]
            call = ToolCallRequest(
                id=f"sandbox_{digest}", name=tool.name, arguments=arguments, raw_arguments=json.dumps(arguments)
            )
            content, calls = f"{SANDBOX_PREFIX} calling {tool.name}.", [call]
        else:
            content, calls = _summary(task, results), []
            schema = _response_format(messages)
            if schema is not None:
                content = json.dumps(_shaped(schema, content))
        usage = Usage(input_tokens=_estimate_tokens(prompt_text), output_tokens=_estimate_tokens(content))
        return LLMResponse(
            content=content,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else "stop",
            usage=usage,
            model=self.config.model,
            provider=self.provider,
            raw_id="sandbox-" + hashlib.sha256(prompt_text.encode()).hexdigest()[:16],
            raw_finish_reason="tool_calls" if calls else "stop",
        )

    def _complete(self, request: CompletionRequest) -> LLMResponse:
        return self._decide(request)

    def _stream(self, request: CompletionRequest) -> Iterator[StreamEvent]:
        response = self._decide(request)
        for word in re.findall(r"\S+\s*", response.content):
            yield StreamEvent(type="text", text=word)
        for index, call in enumerate(response.tool_calls):
            yield StreamEvent(
                type="tool_call_delta",
                index=index,
                tool_call_id=call.id,
                tool_name=call.name,
                arguments_delta=call.raw_arguments,
            )
            yield StreamEvent(type="tool_call", tool_call=call, tool_call_id=call.id, tool_name=call.name)
        yield StreamEvent(type="done", response=response)

    def _embed(self, texts: list[str], *, model: str, dimensions: int | None) -> EmbeddingResult:
        size = dimensions or SANDBOX_EMBED_DIMENSIONS
        vectors = [hash_vector(text, size) for text in texts]
        usage = Usage(input_tokens=sum(_estimate_tokens(text) for text in texts))
        return EmbeddingResult(vectors=vectors, usage=usage, model=model, provider=self.provider)


def _summary(task: str, results: list[ChatMessage]) -> str:
    short = " ".join(task.split())[:200] or "(no task given)"
    parts = [f"{SANDBOX_PREFIX} No model was called. Task: {short}"]
    for result in results:
        parts.append(f"Tool result ({result.name or result.tool_call_id}): {(result.content or '')[:200]}")
    return "\n".join(parts)


def _response_format(messages: list[ChatMessage]) -> dict | None:
    """The JSON Schema the system prompt asks the final answer to match, if it asks."""
    system = next((m.content or "" for m in messages if m.role == "system"), "")
    _, found, rest = system.partition(RESPONSE_FORMAT_INTRO)
    if not found:
        return None
    try:
        schema = json.loads(rest.split("\n", 1)[0])
    except ValueError:
        return None
    return schema if isinstance(schema, dict) else None


def _shaped(schema: dict, summary: str) -> object:
    """The sandbox's answer in the shape asked for: an object's properties filled from the
    summary as tool arguments are from a task; a string schema gets the summary itself."""
    if schema.get("type") == "object" or "properties" in schema:
        return fill_arguments(schema, summary)
    return summary


def hash_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector derived from the text's hash: same text, same vector; not semantic."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        block = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((n / 2**31) - 1.0 for n in struct.unpack("<8I", block))
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
