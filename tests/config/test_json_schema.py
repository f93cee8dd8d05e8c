"""config.json_schema: a tenant's JSON Schema never fetches, never backtracks, never runs away.

No test here measures time (timed unit tests are banned): the inputs below would take minutes
or hours with Python's ``re`` or jsonschema's own keywords, and the tests assert the engine
that ran instead (Python's ``re`` is made to refuse the tenant's patterns).
"""

from __future__ import annotations

import re

import pytest

from config.json_schema import error_line, evaluation, schema_errors, schema_problems
from tests.fakes.schema_canary import SCHEMA_SECRET

REDOS = "^(a+)+$"


@pytest.fixture
def python_re_refuses(monkeypatch):
    """Python's re refuses to compile the patterns named: any use of them fails the test."""
    original = re._compile  # type: ignore[attr-defined]
    refused: set[str] = set()

    def guarded(pattern, flags):
        if pattern in refused:
            raise AssertionError(f"Python's re was asked to run the tenant's pattern {pattern!r}")
        return original(pattern, flags)

    monkeypatch.setattr(re, "_compile", guarded)
    return refused


def lines(schema, instance, **kw) -> list[str]:
    return [error_line(e) for e in schema_errors(schema, instance, **kw)]


# --- H1: no remote references ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make_schema",
    [
        lambda url: {"$ref": url},
        lambda url: {"type": "object", "properties": {"x": {"$ref": url}}},
        lambda url: {"$id": url.rsplit("/", 1)[0] + "/base", "$ref": "secret"},  # relative to a remote $id
        lambda url: {"$defs": {"a": {"$ref": url}}, "anyOf": [{"$ref": "#/$defs/a"}]},
        lambda url: {"$dynamicRef": url},
    ],
)
def test_remote_references_are_refused_at_save_and_never_fetched(schema_document, make_schema):
    schema = make_schema(schema_document.url("/secret"))
    problems = schema_problems(schema)
    assert problems and "outside this schema" in " ".join(problems), problems
    assert schema_document.requests == []


def test_a_stored_schema_with_a_remote_reference_never_fetches(schema_document):
    url = schema_document.url("/secret")
    for schema in ({"$ref": url}, {"properties": {"n": {"$ref": url}}}, {"$id": url, "$ref": "#"}):
        errors = lines(schema, {"n": 1})
        assert errors, schema
        assert SCHEMA_SECRET not in " ".join(errors)
    assert schema_document.requests == []


def test_the_meta_schema_is_no_exception_at_save():
    problems = schema_problems({"$ref": "https://json-schema.org/draft/2020-12/schema"})
    assert problems and "outside this schema" in problems[0]


def test_local_references_anchors_and_embedded_resources_still_work():
    schema = {
        "$id": "https://schemas.example.test/order",
        "$defs": {
            "money": {"type": "number", "minimum": 0},
            "line": {"$anchor": "line", "type": "object", "properties": {"price": {"$ref": "#/$defs/money"}}},
            "sku": {"$id": "sku", "type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
        },
        "type": "object",
        "properties": {"lines": {"type": "array", "items": {"$ref": "#line"}}, "sku": {"$ref": "sku"}},
    }
    assert schema_problems(schema) == []
    assert lines(schema, {"lines": [{"price": 3}], "sku": "ABC-12"}) == []
    assert lines(schema, {"lines": [{"price": -1}], "sku": "abc"}) == [
        "lines/0/price: -1 is less than the minimum of 0",
        "sku: 'abc' does not match '^[A-Z]{3}-[0-9]+$'",
    ]


# --- Endless loops and runaway evaluation ------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        {"$defs": {"a": {"allOf": [{"not": {"$ref": "#/$defs/a"}}]}}, "properties": {"x": {"$ref": "#/$defs/a"}}},
        {"anyOf": [{"type": "string"}, {"if": {"$ref": "#"}}]},
    ],
)
def test_self_reference_that_never_descends_is_refused_at_save_and_an_error_at_run(schema):
    problems = schema_problems(schema)
    assert problems and "refers back to itself" in problems[0], problems
    # A row saved before this check: a clear validation error, not a RecursionError (a 500).
    errors = lines(schema, {"x": 1})
    assert errors and "refers to itself too deeply" in errors[0]


def test_recursive_schemas_that_descend_into_the_input_are_fine():
    tree = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
        "required": ["name"],
    }
    assert schema_problems(tree) == []
    good = {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}
    assert lines(tree, good) == []
    assert lines(tree, {"name": "a", "children": [{"children": []}]}) == ["children/0: 'name' is a required property"]


def test_an_exponential_schema_stops_at_the_budget(monkeypatch):
    # anyOf of two references to the level below, thirty levels: 2**30 evaluations for any
    # instance the bottom refuses. The budget is lowered so the test stays quick; the
    # mechanism is the same at MAX_EVALUATIONS.
    monkeypatch.setattr(evaluation, "MAX_EVALUATIONS", 2_000)
    defs = {"a0": {"type": "null"}}
    for level in range(1, 31):
        below = {"$ref": f"#/$defs/a{level - 1}"}
        defs[f"a{level}"] = {"anyOf": [below, below]}
    schema = {"$defs": defs, "$ref": "#/$defs/a30"}
    assert schema_problems(schema) == []  # no loop, just expensive
    assert lines(schema, "x") == ["(root): Too costly to check against this schema (over 2000 checks)."]
    assert lines(schema, None) == []  # the first branch holds at once


def test_unique_items_is_linear_and_keeps_jsonschemas_notion_of_equality():
    schema = {"type": "array", "uniqueItems": True}
    distinct = [{"id": i, "tags": [i, str(i)]} for i in range(20_000)]
    # 20,000 objects: jsonschema's pairwise comparison would make 200 million comparisons.
    assert lines(schema, distinct) == []
    assert lines(schema, [*distinct, {"tags": [7, "7"], "id": 7}]) == [
        "(root): The array has non-unique elements (item 20000 repeats an earlier one)."
    ]
    assert lines(schema, [1, 1.0]) != []  # equal numbers
    assert lines(schema, [1, True]) == [] and lines(schema, [0, False]) == []  # booleans are not numbers
    assert lines(schema, [{"a": [1, 2]}, {"a": [2, 1]}]) == []


# --- H3: patterns run on RE2 -----------------------------------------------------------------


def test_backtracking_patterns_give_the_right_verdict_without_pythons_re(python_re_refuses):
    python_re_refuses.update({REDOS, "^(a|aa)+$", "^[a-z]+$"})
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": REDOS}},
        "patternProperties": {"^(a|aa)+$": {"type": "integer"}},
        "additionalProperties": False,
        "propertyNames": {"pattern": "^[a-z]+$"},
    }
    assert schema_problems(schema) == []
    evil = "a" * 60 + "!"  # 2**60 paths for a backtracking engine
    assert lines(schema, {"name": "a" * 60}) == []
    assert lines(schema, {"name": evil}) == [f"name: '{evil}' does not match '{REDOS}'"]
    # patternProperties, and additionalProperties deciding what patternProperties covers.
    assert lines(schema, {"a" * 60: 1}) == []
    assert lines(schema, {"a" * 60: "one"}) == [f"{'a' * 60}: 'one' is not of type 'integer'"]
    assert len(lines(schema, {"a" * 60 + "b": 1})) == 1
    # The format "regex" checks on RE2 too.
    assert lines({"format": "regex"}, "(?=a)", formats=True) == ["(root): '(?=a)' is not a 'regex'"]


@pytest.mark.parametrize(
    ("pattern", "named"),
    [("(?=a)b", "(?="), ("(?<!a)b", "(?<"), (r"(a)\1", r"\1"), (r"(?<n>a)\k<n>", r"\k")],
)
def test_patterns_re2_cannot_run_are_refused_at_save_naming_the_construct(python_re_refuses, pattern, named):
    python_re_refuses.add(pattern)
    for schema, value in (({"pattern": pattern}, "b"), ({"patternProperties": {pattern: {}}}, {"b": 1})):
        problems = schema_problems({"type": "object", "properties": {"x": schema}})
        assert len(problems) == 1 and named in problems[0] and "RE2" in problems[0], problems
        assert "properties/x" in problems[0]
        # Saved before this check: refused when evaluated, never handed to Python's re.
        assert "cannot be used" in lines({"properties": {"x": schema}}, {"x": value})[0]


def test_ecma_unicode_escapes_are_translated():
    assert schema_problems({"pattern": "^caf\\u00e9$"}) == []
    assert lines({"pattern": "^caf\\u00e9$"}, "café") == []
    assert lines({"pattern": "^caf\\u00e9$"}, "cafe") != []


def test_unevaluated_properties_beside_pattern_properties_is_refused():
    # jsonschema evaluates patternProperties again for unevaluatedProperties, with Python's re.
    schema = {"patternProperties": {REDOS: {}}, "unevaluatedProperties": False}
    assert "unevaluatedProperties cannot be combined" in schema_problems(schema)[0]
    assert "cannot be evaluated" in lines(schema, {"a" * 40 + "!": 1})[0]


def test_a_dialect_below_the_root_is_refused(python_re_refuses):
    # jsonschema would validate that part with its own Draft7Validator: Python's re again.
    python_re_refuses.add(REDOS)
    schema = {"properties": {"x": {"$schema": "http://json-schema.org/draft-07/schema#", "pattern": REDOS}}}
    assert "only the root may name a dialect" in schema_problems(schema)[0]
    assert "cannot be evaluated" in lines(schema, {"x": "a" * 40 + "!"})[0]


def test_the_roots_dialect_is_kept_through_references_to_the_root(python_re_refuses):
    python_re_refuses.add(REDOS)
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "properties": {"x": {"pattern": REDOS}, "child": {"$ref": "#"}},
    }
    assert schema_problems(schema) == []
    assert lines(schema, {"child": {"child": {"x": "a" * 40 + "!"}}}) == [
        f"child/child/x: '{'a' * 40}!' does not match '{REDOS}'"
    ]


# --- Saving: size, depth, dialects -----------------------------------------------------------


def test_size_depth_and_dialect_are_bounded_at_save():
    deep: dict = {"type": "string"}
    for _ in range(40):
        deep = {"type": "object", "properties": {"a": deep}}
    assert "nests" in schema_problems(deep)[0]
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(2_000)}}
    assert "values; at most" in schema_problems(wide)[0]
    assert "Unknown $schema" in schema_problems({"$schema": 5})[0]
    assert "Unknown $schema" in schema_problems({"$schema": "http://json-schema.org/draft-03/schema#"})[0]
    assert "Not a valid JSON Schema" in schema_problems({"type": "nothing-like-this"})[0]
    assert schema_problems({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}) == []
    assert schema_problems(["not", "a", "schema"]) == ["Must be a JSON Schema: an object (or true/false)."]


def test_a_malformed_stored_schema_is_a_validation_error_not_a_crash():
    assert "not a valid JSON Schema" in lines({"type": "nothing-like-this"}, 1)[0]
    assert lines({"$schema": 5, "type": "integer"}, "x") == ["(root): 'x' is not of type 'integer'"]


# --- Formats: email -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "a@example.test\r\nBcc: victim@example.test",
        "a@example.test\n",
        "a\x00@example.test",
        "a@exa\tmple.test",
        "a@b\x85c.test",
    ],
)
def test_email_refuses_control_characters(address):
    assert lines({"type": "string", "format": "email"}, address, formats=True) != []
    assert lines({"type": "string", "format": "idn-email"}, address, formats=True) != []


def test_email_accepts_addresses():
    for address in ("ops@example.test", "first.last+tag@sub.example.co.uk", "o'brien@example.test"):
        assert lines({"type": "string", "format": "email"}, address, formats=True) == []
