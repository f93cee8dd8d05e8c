"""A small, safe condition language for trigger_conditions and chain-step conditions.

    payload.amount > 100 and payload.stage in ["won", "lost"]
    not (event.type == "crm.contact.deleted") or steps.lookup.status != "failed"

Literals (numbers, 'strings' or "strings", true/false/null, [lists]), field paths
(``a.b.0.c`` or ``a["b"][0]``), comparisons (== != < <= > >=), ``in`` / ``not in``,
``and`` / ``or`` / ``not`` (also ``&&`` ``||`` ``!``) and parentheses. A bare path is true when
its value is truthy. Nothing is ever handed to ``eval``: the text is tokenized and parsed into a
tree of tuples that ``evaluate`` walks.

Evaluation never raises: a missing path is ``null``, and comparing values of different kinds
(``null > 3``, ``"a" < 1``) is simply false. Pure Python, no Django: agents' validation and the
trigger services both import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

MAX_CHARS = 2000
MAX_DEPTH = 32

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<=|>=|&&|\|\||<|>|!|\(|\)|\[|\]|,|\.)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "True", "False", "None"}
_CONSTANTS = {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})


class ConditionError(ValueError):
    """The text does not parse; ``position`` is the character offset of the problem."""

    def __init__(self, message: str, position: int):
        super().__init__(f"{message} (at character {position + 1})")
        self.position = position


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, op, name, end
    value: Any
    position: int


def _unescape(raw: str) -> str:
    out, i = [], 1
    while i < len(raw) - 1:
        char = raw[i]
        if char == "\\" and i + 1 < len(raw) - 1:
            out.append(_ESCAPES.get(raw[i + 1], raw[i + 1]))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _tokens(text: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ConditionError(f"Unexpected character {text[position]!r}", position)
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "number":
            tokens.append(Token("number", float(raw) if any(c in raw for c in ".eE") else int(raw), position))
        elif kind == "string":
            tokens.append(Token("string", _unescape(raw), position))
        elif kind in ("op", "name"):
            tokens.append(Token(kind, raw, position))
        position = match.end()
    tokens.append(Token("end", None, len(text)))
    return tokens


# The tree: ("lit", value) | ("path", (part, ...)) | ("list", [node, ...])
#           | ("not", node) | ("and", [nodes]) | ("or", [nodes]) | ("cmp", op, left, right)
Node = tuple


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, *values: str) -> bool:
        token = self.current
        return token.kind in ("op", "name") and token.value in values

    def expect(self, value: str) -> None:
        if not self.at(value):
            raise ConditionError(f"Expected {value!r}", self.current.position)
        self.take()

    def parse(self) -> Node:
        node = self.or_()
        if self.current.kind != "end":
            raise ConditionError(f"Unexpected {self.current.value!r}", self.current.position)
        return node

    def nested(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError("The expression is nested too deeply", position)

    def or_(self) -> Node:
        parts = [self.and_()]
        while self.at("or", "||"):
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def and_(self) -> Node:
        parts = [self.not_()]
        while self.at("and", "&&"):
            self.take()
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def not_(self) -> Node:
        if self.at("not", "!"):
            token = self.take()
            self.nested(token.position)
            node = ("not", self.not_())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        if self.current.kind == "op" and self.current.value in COMPARISONS:
            op = self.take().value
            return ("cmp", op, left, self.operand())
        if self.at("in"):
            self.take()
            return ("cmp", "in", left, self.operand())
        if self.at("not") and self.tokens[self.index + 1].value == "in":
            self.take()
            self.take()
            return ("cmp", "not in", left, self.operand())
        return left

    def operand(self) -> Node:
        token = self.current
        if token.kind in ("number", "string"):
            self.take()
            return ("lit", token.value)
        if token.kind == "name" and token.value in _CONSTANTS:
            self.take()
            return ("lit", _CONSTANTS[token.value])
        if token.kind == "name" and token.value not in _KEYWORDS:
            return self.path()
        if self.at("("):
            self.take()
            self.nested(token.position)
            node = self.or_()
            self.depth -= 1
            self.expect(")")
            return node
        if self.at("["):
            self.take()
            items: list[Node] = []
            while not self.at("]"):
                items.append(self.operand())
                if not self.at("]"):
                    self.expect(",")
            self.take()
            return ("list", items)
        what = "the end of the expression" if token.kind == "end" else repr(token.value)
        raise ConditionError(f"Expected a value or a field path, found {what}", token.position)

    def path(self) -> Node:
        parts: list[str | int] = [self.take().value]
        while True:
            if self.at("."):
                self.take()
                token = self.take()
                if token.kind == "name" or (token.kind == "number" and isinstance(token.value, int)):
                    parts.append(token.value)
                    continue
                raise ConditionError("Expected a field name after '.'", token.position)
            if self.at("["):
                self.take()
                token = self.take()
                if token.kind not in ("string", "number") or isinstance(token.value, float):
                    raise ConditionError("Expected a string or a whole number inside [ ]", token.position)
                parts.append(token.value)
                self.expect("]")
                continue
            return ("path", tuple(parts))


def resolve(data: Any, path: tuple) -> Any:
    """The value at ``path`` inside nested dicts and lists, or None when there is none."""
    value = data
    for part in path:
        if isinstance(value, dict):
            value = value.get(part if isinstance(part, str) else str(part))
        elif isinstance(value, list) and isinstance(part, int) and -len(value) <= part < len(value):
            value = value[part]
        else:
            return None
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("==", "!="):
        # true == 1 is false here: JSON booleans and numbers are different kinds.
        same = (isinstance(left, bool) == isinstance(right, bool)) and left == right
        return same if op == "==" else not same
    if op in ("in", "not in"):
        if isinstance(right, str):
            found = isinstance(left, str) and left in right
        elif isinstance(right, (list, dict)):
            found = any(_compare("==", left, item) for item in right)
        else:
            return False  # membership in a number or null is neither true nor its negation
        return found if op == "in" else not found
    if not ((_number(left) and _number(right)) or (isinstance(left, str) and isinstance(right, str))):
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _value(node: Node, data: Any) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "path":
        return resolve(data, node[1])
    if kind == "list":
        return [_value(item, data) for item in node[1]]
    return _truth(node, data)


def _truth(node: Node, data: Any) -> bool:
    kind = node[0]
    if kind == "and":
        return all(_truth(part, data) for part in node[1])
    if kind == "or":
        return any(_truth(part, data) for part in node[1])
    if kind == "not":
        return not _truth(node[1], data)
    if kind == "cmp":
        return _compare(node[1], _value(node[2], data), _value(node[3], data))
    return bool(_value(node, data))


def _paths(node: Node, into: set[tuple]) -> None:
    kind = node[0]
    if kind == "path":
        into.add(node[1])
    elif kind in ("and", "or", "list"):
        for part in node[1]:
            _paths(part, into)
    elif kind == "not":
        _paths(node[1], into)
    elif kind == "cmp":
        _paths(node[2], into)
        _paths(node[3], into)


@dataclass(frozen=True)
class Condition:
    text: str
    tree: Node
    paths: frozenset[tuple] = field(default_factory=frozenset)

    def evaluate(self, data: Any) -> bool:
        return _truth(self.tree, data)


@lru_cache(maxsize=2048)
def condition_parse(text: str) -> Condition:
    """Parse once (cached); raises ConditionError with a position."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("The condition is empty", 0)
    if len(text) > MAX_CHARS:
        raise ConditionError(f"The condition is longer than {MAX_CHARS} characters", MAX_CHARS)
    tree = _Parser(text).parse()
    paths: set[tuple] = set()
    _paths(tree, paths)
    return Condition(text=text, tree=tree, paths=frozenset(paths))


def path_text(path: tuple) -> str:
    return ".".join(str(part) for part in path)


def roots_problem(condition: Condition, roots: tuple[str, ...]) -> str | None:
    """A message when a path starts with a name other than ``roots`` (a typo, usually)."""
    for path in sorted(condition.paths, key=path_text):
        if path[0] not in roots:
            wanted = ", ".join(f"{root}." for root in roots)
            return f"Unknown name {path[0]!r} in {path_text(path)!r}; field paths start with {wanted}"
    return None


# --- trigger_conditions on agents -----------------------------------------------------------

TRIGGER_ROOTS = ("payload", "event")


def trigger_conditions_problems(value: Any) -> dict[str, str]:
    """Problems of an agent's trigger_conditions, keyed by sub-field; empty when valid.

    ``{}`` always holds; ``{"expression": "<condition>"}`` holds when the condition does;
    any other key is a field path that must equal its value (``{"payload.stage": "won"}``).
    """
    if not isinstance(value, dict):
        return {"": "Must be an object."}
    problems: dict[str, str] = {}
    for key, expected in value.items():
        if key == "expression":
            try:
                problem = roots_problem(condition_parse(expected), TRIGGER_ROOTS)
            except ConditionError as exc:
                problem = str(exc)
            if problem:
                problems[key] = problem
            continue
        try:
            parsed = condition_parse(key)
        except ConditionError as exc:
            problems[key] = f"Not a field path: {exc}"
            continue
        if parsed.tree[0] != "path":
            problems[key] = "Keys other than 'expression' must be field paths such as payload.stage."
        elif problem := roots_problem(parsed, TRIGGER_ROOTS):
            problems[key] = problem
        elif isinstance(expected, dict):
            problems[key] = "Compare with a string, number, boolean, null or a list of them."
    return problems


def trigger_conditions_hold(value: dict[str, Any] | None, data: dict[str, Any]) -> bool:
    """Whether an (already validated) trigger_conditions object holds on ``data``.

    A list as the expected value of a path means "one of these".
    """
    for key, expected in (value or {}).items():
        if key == "expression":
            if not condition_parse(expected).evaluate(data):
                return False
            continue
        actual = resolve(data, condition_parse(key).tree[1])
        if isinstance(expected, list):
            if not _compare("in", actual, expected):
                return False
        elif not _compare("==", actual, expected):
            return False
    return True
