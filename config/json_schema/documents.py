"""A schema as a document: what it may contain, checked once at save (``schema_problems``)
and, for the few rules that matter at every evaluation, by ``scan``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import referencing.jsonschema
from jsonschema import Draft4Validator, Draft6Validator, Draft7Validator, Draft201909Validator, Draft202012Validator
from referencing import Registry
from referencing.exceptions import InvalidAnchor, NoSuchAnchor, NoSuchResource, PointerToNowhere, Unresolvable

from config.json_schema.patterns import PatternRefused, compiled_pattern

# A schema is read, checked against its meta-schema and walked at save: its size is what that
# costs (the meta-schema check is ~0.4 ms a node). 3,000 nodes is ten times the largest schema
# the built-in tools or the reference define; 32 levels is ~15 levels of nested input.
MAX_SCHEMA_NODES = 3_000
MAX_SCHEMA_DEPTH = 32

DIALECTS: dict[str, type] = {
    str(cls.ID_OF(cls.META_SCHEMA)).rstrip("#"): cls  # type: ignore[attr-defined]
    for cls in (Draft4Validator, Draft6Validator, Draft7Validator, Draft201909Validator, Draft202012Validator)
}
DEFAULT_DIALECT = Draft202012Validator

# Keywords whose value is evaluated against the same instance (a loop through them never ends)
# and those that descend into a part of it; a union over the drafts, so the walk sees at
# least what any draft evaluates.
_SAME_INSTANCE_LISTS = ("allOf", "anyOf", "oneOf")
_SAME_INSTANCE_ONE = ("not", "if", "then", "else")
_SAME_INSTANCE_MAPS = ("dependentSchemas", "dependencies")
_DESCEND_ONE = (
    "additionalProperties", "unevaluatedProperties", "additionalItems", "unevaluatedItems", "contains",
    "propertyNames", "items",
)  # fmt: skip
_DESCEND_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_DESCEND_LISTS = ("prefixItems", "items")
REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")


def _refuse_retrieval(uri: str) -> Any:
    """The registry's retrieve: nothing outside the schema is ever fetched."""
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


NO_FETCH = Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


def scan(schema: Any) -> tuple[int, int, list[str]]:
    """(nodes, depth, refusals) of a plain walk of the document, iterative so any depth is safe.

    The refusals hold at every key, wherever it sits, so save and evaluation agree:
    a ``$schema`` below the root would make jsonschema switch to its own validator class for
    that part (with Python's re); unevaluatedProperties re-matches patternProperties with re.
    """
    nodes, depth, refusals = 0, 0, list[str]()
    seen_unevaluated = seen_patterns = False
    # A path is (parent's path, key): cheap to make for every value, spelled out only if needed.
    stack: list[tuple[Any, int, Any]] = [(schema, 1, None)]
    while stack:
        node, level, path = stack.pop()
        nodes += 1
        depth = max(depth, level)
        if isinstance(node, dict):
            if level > 1 and isinstance(node.get("$schema"), str) and not refusals:
                refusals.append(
                    f"$schema appears below the root (at {_spelled(path)}); only the root may name a dialect."
                )
            seen_unevaluated = seen_unevaluated or "unevaluatedProperties" in node
            seen_patterns = seen_patterns or "patternProperties" in node
            stack.extend((value, level + 1, (path, key)) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, level + 1, (path, index)) for index, value in enumerate(node))
    if seen_unevaluated and seen_patterns:
        refusals.append(
            "unevaluatedProperties cannot be combined with patternProperties in one schema "
            "(use additionalProperties beside the patternProperties instead)."
        )
    return nodes, depth, refusals


def _spelled(path: Any) -> str:
    keys = []
    while path is not None:
        path, key = path
        keys.append(str(key))
    return "/".join(reversed(keys))


def dialect(schema: Any) -> type | None:
    """The validator class the schema's ``$schema`` names; None for one Agentry does not run."""
    if not isinstance(schema, dict) or "$schema" not in schema:
        return DEFAULT_DIALECT
    value = schema["$schema"]
    return DIALECTS.get(value.rstrip("#")) if isinstance(value, str) else None


def schema_problems(schema: Any) -> list[str]:
    """Why a schema cannot be saved (empty: it can). Every message says what to change."""
    if not isinstance(schema, (dict, bool)):
        return ["Must be a JSON Schema: an object (or true/false)."]
    nodes, depth, refusals = scan(schema)
    if nodes > MAX_SCHEMA_NODES:
        return [f"The schema has {nodes} values; at most {MAX_SCHEMA_NODES}."]
    if depth > MAX_SCHEMA_DEPTH:
        return [f"The schema nests {depth} levels deep; at most {MAX_SCHEMA_DEPTH}."]
    base = dialect(schema)
    if base is None:
        known = ", ".join(sorted(DIALECTS))
        return [f"Unknown $schema {schema['$schema']!r}; use one of {known} (or leave it out for 2020-12)."]  # type: ignore[index]
    if refusals:
        return refusals
    error = next(base(base.META_SCHEMA, registry=NO_FETCH).iter_errors(schema), None)  # type: ignore[attr-defined]
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        return [f"Not a valid JSON Schema: {error.message}" + (f" (at {where})" if where else "")]
    return _walk_problems(schema, base)


def _children(node: dict) -> Iterator[tuple[Any, bool, str]]:
    """(subschema, evaluated against the same instance?, key path) of one schema object."""
    for key in _SAME_INSTANCE_LISTS:
        if isinstance(node.get(key), list):
            yield from ((item, True, f"{key}/{i}") for i, item in enumerate(node[key]))
    for key in _SAME_INSTANCE_ONE:
        if key in node:
            yield node[key], True, key
    for key in _SAME_INSTANCE_MAPS:
        if isinstance(node.get(key), dict):
            yield from ((item, True, f"{key}/{name}") for name, item in node[key].items())
    for key in _DESCEND_ONE:
        if isinstance(node.get(key), dict):
            yield node[key], False, key
    for key in _DESCEND_MAPS:
        if isinstance(node.get(key), dict):
            yield from ((item, False, f"{key}/{name}") for name, item in node[key].items())
    for key in _DESCEND_LISTS:
        if isinstance(node.get(key), list):
            yield from ((item, False, f"{key}/{i}") for i, item in enumerate(node[key]))


def _walk_problems(schema: Any, base: type) -> list[str]:
    """Patterns RE2 cannot run, references that leave the schema or lead nowhere, and loops of
    references that never descend into the input (``{"$ref": "#"}``)."""
    if not isinstance(schema, dict):
        return []
    specification = referencing.jsonschema.specification_with(base.ID_OF(base.META_SCHEMA))  # type: ignore[attr-defined]
    resolver = Registry(retrieve=_refuse_retrieval).resolver_with_root(specification.create_resource(schema))  # type: ignore[call-arg]
    problems: list[str] = []
    where_of: dict[int, str] = {}
    same_instance: dict[int, list[int]] = {}
    pending: list[tuple[Any, Any, str]] = [(schema, resolver, "#")]
    while pending:
        node, resolver, where = pending.pop()
        if not isinstance(node, dict) or id(node) in where_of:
            continue
        where_of[id(node)] = where
        edges = same_instance.setdefault(id(node), [])
        for pattern in [node.get("pattern"), *(node.get("patternProperties") or {})]:
            if pattern is None:
                continue
            try:
                compiled_pattern(pattern)
            except PatternRefused as exc:
                problems.append(f"{exc} (at {where})")
        for keyword in REFERENCES:
            reference = node.get(keyword)
            if not isinstance(reference, str):
                continue
            try:
                resolved = resolver.lookup(reference)
            except (PointerToNowhere, NoSuchAnchor, InvalidAnchor):
                problems.append(f"{keyword} {reference!r} points to nothing in this schema (at {where}).")
                continue
            except Unresolvable:
                problems.append(
                    f"{keyword} {reference!r} refers to a document outside this schema (at {where}); "
                    "references are never fetched: put the definition under $defs and use #/$defs/…"
                )
                continue
            if isinstance(resolved.contents, dict):
                edges.append(id(resolved.contents))
                pending.append((resolved.contents, resolved.resolver, reference))
        for child, same, key in _children(node):
            if isinstance(child, dict):
                if same:
                    edges.append(id(child))
                pending.append((child, resolver.in_subresource(specification.create_resource(child)), f"{where}/{key}"))
    loop = _loop(same_instance)
    if loop is not None:
        problems.append(
            f"{where_of[loop]} refers back to itself (through $ref, allOf, anyOf, oneOf, not or if) without "
            "descending into the input: validating anything against it would never end."
        )
    return problems


def _loop(edges: dict[int, list[int]]) -> int | None:
    """A node on a cycle of the graph, if there is one (iterative depth-first search)."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in edges:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(edges.get(start, ())))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                return child
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(edges.get(child, ()))))
    return None
