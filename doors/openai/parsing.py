"""Reading OpenAI request bodies into a run: task, transcript, caller instructions, limits.

What the door cannot honour is refused with the parameter named (client-side ``tools``: the
agent's own tools run on the server); parameters it accepts but does not use are listed in
the ``X-Agentry-Ignored-Parameters`` response header, so nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from doors.openai.errors import OpenAIInvalid

TOOLS_REFUSED = (
    "Client-side tools are not supported: this model is an Agentry agent, and its own tools run on the "
    "server. Send the request without '{param}'."
)
# Accepted and without effect on an agent's run (an agent's model settings are its own).
IGNORED = frozenset(
    {
        "user",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "stop",
        "logit_bias",
        "metadata",
        "store",
        "parallel_tool_calls",
        "service_tier",
        "reasoning_effort",
        "reasoning",
        "truncation",
        "text",
        "include",
        "prompt_cache_key",
        "safety_identifier",
        "background",
    }
)
MAX_INSTRUCTIONS_CHARS = 20_000


@dataclass
class RunRequest:
    model: str
    task: str
    history: list[dict[str, str]] = field(default_factory=list)
    instructions: str = ""
    stream: bool = False
    include_usage: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    ignored: list[str] = field(default_factory=list)


def _text(content: Any, param: str) -> str:
    """A message's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for index, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in ("text", "input_text", "output_text"):
                raise OpenAIInvalid(
                    f"Only text content is supported; part {index} is {kind!r}.", param=f"{param}[{index}]"
                )
            texts.append(str(part.get("text", "")))
        return "\n".join(texts)
    if content is None:
        return ""
    raise OpenAIInvalid("Content must be a string or a list of text parts.", param=param)


def _common(body: Any, *, known: set[str], max_tokens_keys: tuple[str, ...]) -> RunRequest:
    if not isinstance(body, dict):
        raise OpenAIInvalid("The request body must be a JSON object.")
    for key in ("tools", "functions"):
        if body.get(key):
            raise OpenAIInvalid(TOOLS_REFUSED.format(param=key), param=key, code="tools_not_supported")
    if body.get("tool_choice") not in (None, "none", "auto"):
        raise OpenAIInvalid(TOOLS_REFUSED.format(param="tool_choice"), param="tool_choice", code="tools_not_supported")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise OpenAIInvalid("'model' is required: an agent's slug or id (GET /openai/v1/models).", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise OpenAIInvalid("'stream' must be true or false.", param="stream")
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise OpenAIInvalid("'temperature' must be a number from 0 to 2.", param="temperature")
    max_tokens = None
    for key in max_tokens_keys:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OpenAIInvalid(f"'{key}' must be a whole number of at least 1.", param=key)
        max_tokens = value
    options = body.get("stream_options") or {}
    ignored = sorted(k for k in body if k not in known and k in IGNORED)
    unknown = sorted(k for k in body if k not in known and k not in IGNORED)
    if unknown:
        raise OpenAIInvalid(f"Unsupported parameter(s): {', '.join(unknown)}.", param=unknown[0])
    return RunRequest(
        model=model.strip(),
        task="",
        stream=bool(stream),
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        temperature=float(temperature) if temperature is not None else None,
        max_tokens=max_tokens,
        ignored=ignored,
    )


CHAT_KNOWN = {
    "model", "messages", "stream", "stream_options", "temperature", "max_tokens", "max_completion_tokens",
    "tools", "functions", "tool_choice", "n", "response_format", "logprobs",
}  # fmt: skip


def chat_request(body: Any) -> RunRequest:
    """messages -> the last user message is the task, earlier turns the history, system and
    developer messages the caller's instructions (appended to the agent's, never replacing)."""
    request = _common(body, known=CHAT_KNOWN, max_tokens_keys=("max_tokens", "max_completion_tokens"))
    if body.get("n") not in (None, 1):
        raise OpenAIInvalid("Only n=1 is supported: one run answers one request.", param="n")
    if body.get("logprobs"):
        raise OpenAIInvalid("logprobs are not available from an agent.", param="logprobs")
    fmt = body.get("response_format")
    if fmt not in (None, {"type": "text"}):
        raise OpenAIInvalid(
            "response_format is not supported: an agent's output format is its output_schema.", param="response_format"
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise OpenAIInvalid("'messages' must be a non-empty list.", param="messages")
    request.history, request.instructions, request.task = _transcript(messages, param="messages")
    return request


def _transcript(items: list[Any], *, param: str) -> tuple[list[dict[str, str]], str, str]:
    history: list[dict[str, str]] = []
    system: list[str] = []
    for index, message in enumerate(items):
        where = f"{param}[{index}]"
        if not isinstance(message, dict):
            raise OpenAIInvalid("Each message must be an object with a role and content.", param=where)
        role = message.get("role")
        if message.get("type") not in (None, "message"):
            raise OpenAIInvalid(
                f"Input items of type {message.get('type')!r} are not supported (text messages only).", param=where
            )
        if role in ("tool", "function") or message.get("tool_calls") or message.get("function_call"):
            raise OpenAIInvalid(TOOLS_REFUSED.format(param=where), param=where, code="tools_not_supported")
        text = _text(message.get("content"), f"{where}.content")
        if role in ("system", "developer"):
            system.append(text)
        elif role in ("user", "assistant"):
            history.append({"role": role, "content": text})
        else:
            raise OpenAIInvalid(f"Unknown role {role!r}.", param=f"{where}.role")
    if not history or history[-1]["role"] != "user" or not history[-1]["content"].strip():
        raise OpenAIInvalid("The last message must be a user message with text: it is the agent's task.", param=param)
    instructions = "\n\n".join(s for s in system if s.strip())
    if len(instructions) > MAX_INSTRUCTIONS_CHARS:
        raise OpenAIInvalid(f"System messages: at most {MAX_INSTRUCTIONS_CHARS} characters.", param=param)
    return history[:-1], instructions, history[-1]["content"]


RESPONSES_KNOWN = {
    "model", "input", "instructions", "previous_response_id", "stream", "stream_options", "temperature",
    "max_output_tokens", "tools", "tool_choice",
}  # fmt: skip


def responses_request(body: Any) -> tuple[RunRequest, str | None]:
    """(the run request, the previous response's id) of a POST /responses body."""
    request = _common(body, known=RESPONSES_KNOWN, max_tokens_keys=("max_output_tokens",))
    raw = body.get("input")
    if isinstance(raw, str):
        if not raw.strip():
            raise OpenAIInvalid("'input' must not be empty.", param="input")
        request.task = raw
    elif isinstance(raw, list) and raw:
        request.history, system, request.task = _transcript(raw, param="input")
        request.instructions = system
    else:
        raise OpenAIInvalid("'input' is required: a string or a list of messages.", param="input")
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise OpenAIInvalid("'instructions' must be a string.", param="instructions")
        request.instructions = "\n\n".join(s for s in (instructions, request.instructions) if s.strip())
        if len(request.instructions) > MAX_INSTRUCTIONS_CHARS:
            raise OpenAIInvalid(f"At most {MAX_INSTRUCTIONS_CHARS} characters.", param="instructions")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise OpenAIInvalid("'previous_response_id' must be a string.", param="previous_response_id")
    return request, previous
