"""How the sandbox provider picks a tool and fills its arguments, without a model.

A demo must show tool use on the prompts people really write ("E-mail ann@example.com the
summary and create a follow-up task"), not only when a tool's exact name is a word of the
task. So: every offered tool is scored by how many of its name's parts and description's
words the task mentions; the best one not yet called for this task is called, if it scores
at least one name part (or three description words). Arguments come from the task where it
has them (addresses, dates, numbers, enum values it names, its first line as a subject, its
text as a body) and are checked against the tool's JSON Schema: when the filled optional
ones do not pass, only the required ones are sent. Deterministic: same task, same call.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from config.json_schema import schema_errors

from .base import ToolSpec

# A task asks for a handful of actions at most; more would be the sandbox looping.
MAX_TOOLS_PER_TASK = 3
NAME_PART_SCORE = 3
MIN_SCORE = 3
PLACEHOLDER_EMAIL = "recipient@example.com"  # RFC 2606: a domain that never receives mail

_STOPWORDS = frozenset(
    str.split(
        "a an the to of for and or in on at by from with without into as is are be been it its this that these those "
        "one more any all no not new use using used via per your you our we their them they his her can may will "
        "do does done please then than when what which who how about after before over under some such"
    )
)
# Words people use for what tools' names say ("e-mail Ann", "remind me", "look her up").
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": ("send",),
    "mail": ("email", "send"),
    "remind": ("notify",),
    "reminder": ("notify",),
    "tell": ("notify",),
    "alert": ("notify",),
    "look": ("get", "search"),
    "find": ("search",),
    "meeting": ("calendar", "event"),
    "book": ("calendar", "event"),
    "todo": ("task", "create"),
    "follow": ("task",),
}
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_DATETIME = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_URL = re.compile(r"https?://[^\s<>\"')]+")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_TITLE_NAMES = frozenset({"subject", "title", "name", "summary", "label", "headline"})
_TEXT_NAMES = frozenset({"body", "description", "message", "content", "text", "note", "notes", "query", "prompt"})


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def words(text: str) -> set[str]:
    text = re.sub(r"\be-mail", "email", text.lower())
    return {_stem(w) for w in re.findall(r"[a-z0-9]+", text) if w not in _STOPWORDS}


def _mentions(task_words: set[str], word: str) -> bool:
    # "creat" (creating) and "create" are the same word; short words must match exactly.
    return any(
        w == word or (min(len(w), len(word)) >= 4 and (w.startswith(word) or word.startswith(w))) for w in task_words
    )


def _name_parts(tool: ToolSpec) -> set[str]:
    return {_stem(p) for p in re.findall(r"[a-z0-9]+", tool.name.lower()) if p not in _STOPWORDS}


def task_words(task: str) -> set[str]:
    """The task's words, with the tool words their usual synonyms stand for."""
    found = words(task)
    return found | {alias for word in found for alias in _SYNONYMS.get(word, ())}


_SYNONYMS = {_stem(word): aliases for word, aliases in _SYNONYMS.items()}  # keyed as words() spells them


def relevance(tool: ToolSpec, task_words: set[str], *, covered: frozenset[str] = frozenset()) -> tuple[int, int]:
    """(score, name parts newly matched): name parts the task mentions that tools already
    called did not, and description words it mentions."""
    name_parts = _name_parts(tool)
    new_parts = sum(1 for part in name_parts - covered if _mentions(task_words, part))
    described = sum(1 for word in words(tool.description or "") - name_parts if _mentions(task_words, word))
    return NAME_PART_SCORE * new_parts + described, new_parts


def choose_tool(tools: list[ToolSpec], task: str, *, called: list[str]) -> ToolSpec | None:
    """The offered tool the task is most about, among those not called for it yet. After the
    first, a tool must match a part of the task the called ones did not (``email_draft`` does
    not follow ``email_send`` for "e-mail Ann")."""
    if len(called) >= MAX_TOOLS_PER_TASK:
        return None
    wanted = task_words(task)
    by_name = {tool.name: tool for tool in tools}
    covered = frozenset(part for name in called if name in by_name for part in _name_parts(by_name[name]))
    scored = []
    for tool in tools:
        if tool.name in called:
            continue
        score, new_parts = relevance(tool, wanted, covered=covered)
        if score >= MIN_SCORE and (new_parts or not called):
            scored.append((score, tool.name, tool))
    if not scored:
        return None
    return min(scored, key=lambda entry: (-entry[0], entry[1]))[2]


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    first = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0]
    return first[:limit].rstrip() or line[:limit]


def _when(task: str, name: str) -> datetime:
    found = _DATETIME.search(task)
    if found:
        try:
            start = datetime.fromisoformat(found.group(0).replace(" ", "T").replace("Z", "+00:00"))
        except ValueError:
            start = None
        if start is not None:
            start = start if start.tzinfo else start.replace(tzinfo=UTC)
            return start + timedelta(hours=1) if "end" in name else start
    # Deterministic for a day: tomorrow 09:00 UTC (an hour later for an end).
    base = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return base + timedelta(hours=1) if "end" in name else base


def _string(name: str, spec: dict[str, Any], task: str, required: bool) -> str | None:
    fmt = spec.get("format")
    limit = int(spec.get("maxLength") or 10_000)
    if fmt == "email":
        found = _EMAIL.search(task)
        return found.group(0) if found else (PLACEHOLDER_EMAIL if required else None)
    if fmt == "date-time":
        return _when(task, name).isoformat() if required or _DATETIME.search(task) else None
    if fmt == "date":
        found = _DATE.search(task)
        return found.group(0) if found else (_when(task, name).date().isoformat() if required else None)
    if fmt in ("uri", "url") or name in ("url", "link", "website"):
        found = _URL.search(task)
        return found.group(0) if found else ("https://example.com/" if required else None)
    if not required:
        return None
    if name in _TITLE_NAMES:
        return _one_line(task, min(limit, 80)) or name
    if name in _TEXT_NAMES:
        return " ".join(task.split())[:limit] or name
    value = _one_line(task, min(limit, 80)) or name
    pattern = spec.get("pattern")
    if pattern and not re.search(pattern, value):
        return None  # a member id, a phone number: nothing in the task fits it
    return value


def _value(name: str, spec: dict[str, Any], task: str, required: bool) -> Any:
    if spec.get("enum"):
        named = [v for v in spec["enum"] if isinstance(v, str) and re.search(rf"\b{re.escape(v)}\b", task, re.I)]
        if named:
            return named[0]
        return spec.get("default", spec["enum"][0]) if required else None
    kind = spec.get("type", "string")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "string":
        return _string(name, spec, task, required)
    if kind == "array":
        items = spec.get("items") or {}
        if items.get("format") == "email":
            found = list(dict.fromkeys(_EMAIL.findall(task)))[: int(spec.get("maxItems") or 50)]
            return found or ([PLACEHOLDER_EMAIL] if required else None)
        return [] if required else None
    if kind in ("integer", "number"):
        low, high = spec.get("minimum"), spec.get("maximum")
        for raw in _NUMBER.findall(task):
            number = int(float(raw)) if kind == "integer" else float(raw)
            if (low is None or number >= low) and (high is None or number <= high):
                return number
        if not required:
            return None
        return spec.get("default", low if low is not None else 1)
    if kind == "boolean":
        return spec.get("default", False) if required else None
    if kind == "object":
        return {} if required else None
    return None


def fill_arguments(schema: dict[str, Any], task: str) -> dict[str, Any]:
    """Arguments for ``schema`` taken from the task, valid against it when the task allows."""
    properties: dict[str, Any] = schema.get("properties") or {}
    required = [name for name in schema.get("required") or () if name in properties]
    arguments: dict[str, Any] = {}
    for name in required:
        arguments[name] = _value(name, properties[name] or {}, task, True)
    minimal = dict(arguments)
    for name, spec in properties.items():
        if name not in arguments:
            value = _value(name, spec or {}, task, False)
            if value is not None:
                arguments[name] = value
    if arguments != minimal and schema_errors(schema, arguments, formats=True):
        return minimal  # an optional value the task suggested does not fit: leave them out
    return arguments
