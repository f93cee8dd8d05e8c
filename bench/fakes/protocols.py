"""Render script items in each provider's wire format (JSON bodies and SSE streams)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import time
from itertools import count
from typing import Any

from .script import Conversation, HttpError, Reply

_ids = count(1)

# Neutral finish reason -> what each protocol says.
_OPENAI_FINISH = {"stop": "stop", "tool_calls": "tool_calls", "length": "length", "content_filter": "content_filter"}
_ANTHROPIC_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens", "content_filter": "refusal"}

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_denied",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _estimate(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def usage_numbers(reply: Reply, chat: Conversation) -> tuple[int, int, int]:
    """(input, output, cached) tokens: scripted, else estimated at ~4 characters per token."""
    given = reply.usage or {}
    output_text = reply.text + "".join(call.raw_arguments() for call in reply.tool_calls)
    input_tokens = given.get("input", _estimate(json.dumps(chat.body.get("messages", []))))
    return input_tokens, given.get("output", _estimate(output_text)), given.get("cached", 0)


def _finish(reply: Reply) -> str:
    if reply.finish_reason:
        return reply.finish_reason
    return "tool_calls" if reply.tool_calls else "stop"


def _pieces(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or []


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"{head}data: {payload}\n\n".encode()


# -- OpenAI / Groq -------------------------------------------------------------------------


def _openai_usage(reply: Reply, chat: Conversation) -> dict[str, Any]:
    prompt, completion, cached = usage_numbers(reply, chat)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def openai_completion(reply: Reply, chat: Conversation) -> dict[str, Any]:
    n = next(_ids)
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or f"call_{n}_{i}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.raw_arguments()},
            }
            for i, call in enumerate(reply.tool_calls)
        ]
    finish = _finish(reply)
    return {
        "id": f"chatcmpl-fake-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or chat.body.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": _OPENAI_FINISH.get(finish, finish)}],
        "usage": _openai_usage(reply, chat),
    }


def openai_stream(reply: Reply, chat: Conversation) -> bytes:
    n = next(_ids)
    base = {
        "id": f"chatcmpl-fake-{n}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model or chat.body.get("model", "fake"),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> bytes:
        return sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more})

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": piece}) for piece in _pieces(reply.text)]
    for i, call in enumerate(reply.tool_calls):
        head = {"index": i, "id": call.id or f"call_{n}_{i}", "type": "function"}
        out.append(chunk({"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]}))
        for piece in _pieces(call.raw_arguments(), 7):
            out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    finish = _finish(reply)
    usage = _openai_usage(reply, chat)
    if chat.protocol == "groq":
        # Groq puts stream usage on the last chunk, under its own x_groq key.
        out.append(chunk({}, _OPENAI_FINISH.get(finish, finish), x_groq={"id": f"req_{n}", "usage": usage}))
    else:
        out.append(chunk({}, _OPENAI_FINISH.get(finish, finish)))
        if (chat.body.get("stream_options") or {}).get("include_usage"):
            out.append(sse({**base, "choices": [], "usage": usage}))
    out.append(sse("[DONE]"))
    return b"".join(out)


def openai_error(error: HttpError) -> dict[str, Any]:
    kind = error.error_type or _OPENAI_ERROR_TYPES.get(error.status, "server_error")
    message = error.message or f"fake error {error.status}"
    return {"error": {"message": message, "type": kind, "param": None, "code": error.code}}


# -- Anthropic -----------------------------------------------------------------------------


def _anthropic_usage(reply: Reply, chat: Conversation) -> dict[str, int]:
    total_input, output, cached = usage_numbers(reply, chat)
    # Anthropic's input_tokens excludes the tokens read from the cache.
    return {
        "input_tokens": total_input - cached,
        "output_tokens": output,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def _tool_input(call_arguments: dict[str, Any] | str) -> Any:
    if isinstance(call_arguments, dict):
        return call_arguments
    try:
        return json.loads(call_arguments)
    except ValueError:
        return call_arguments  # malformed on purpose: the client must cope


def anthropic_message(reply: Reply, chat: Conversation) -> dict[str, Any]:
    n = next(_ids)
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    content += [
        {"type": "tool_use", "id": call.id or f"toolu_{n}_{i}", "name": call.name, "input": _tool_input(call.arguments)}
        for i, call in enumerate(reply.tool_calls)
    ]
    finish = _finish(reply)
    return {
        "id": f"msg_fake_{n}",
        "type": "message",
        "role": "assistant",
        "model": reply.model or chat.body.get("model", "fake"),
        "content": content,
        "stop_reason": _ANTHROPIC_STOP.get(finish, finish),
        "stop_sequence": None,
        "usage": _anthropic_usage(reply, chat),
    }


def anthropic_stream(reply: Reply, chat: Conversation) -> bytes:
    message = anthropic_message(reply, chat)
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    out = [sse({"type": "message_start", "message": start}, "message_start"), sse({"type": "ping"}, "ping")]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opened = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        else:
            opened = {**block, "input": {}}
            raw = reply.tool_calls[index - (1 if reply.text else 0)].raw_arguments()
            deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in _pieces(raw, 7)]
        out.append(sse({"type": "content_block_start", "index": index, "content_block": opened}, "content_block_start"))
        for delta in deltas:
            out.append(sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"))
        out.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    out.append(
        sse(
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": usage["output_tokens"]}},
            "message_delta",
        )
    )
    out.append(sse({"type": "message_stop"}, "message_stop"))
    return b"".join(out)


def anthropic_error(error: HttpError) -> dict[str, Any]:
    kind = error.error_type or _ANTHROPIC_ERROR_TYPES.get(error.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": error.message or f"fake error {error.status}"}}


# -- Embeddings ----------------------------------------------------------------------------


def hash_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector derived from the text's SHA-256: deterministic, not semantic."""
    values: list[float] = []
    block_number = 0
    while len(values) < dimensions:
        block = hashlib.sha256(f"{block_number}:{text}".encode()).digest()
        values.extend((n / 2**31) - 1.0 for n in struct.unpack("<8I", block))
        block_number += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def embeddings(body: dict[str, Any], *, default_dimensions: int) -> dict[str, Any]:
    raw = body.get("input", [])
    texts = [raw] if isinstance(raw, str) else [t if isinstance(t, str) else json.dumps(t) for t in raw]
    dimensions = int(body.get("dimensions") or default_dimensions)
    data = []
    for index, text_ in enumerate(texts):
        vector = hash_vector(text_, dimensions)
        encoded: Any = vector
        if body.get("encoding_format") == "base64":  # the OpenAI SDK's default: float32 little-endian
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(_estimate(t) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", "fake-embedding"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
