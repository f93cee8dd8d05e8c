"""The one way to check and evaluate a JSON Schema a tenant wrote (an agent's input and output
schemas, a tool's parameters and returns, and, for uniformity, the platform's own schemas).

A tenant's schema is hostile input (DESIGN.md §6): it must not make the platform fetch a URL,
run a backtracking regular expression, or recurse or branch without end. So:

- ``$ref`` resolves only inside the schema (``#/...`` pointers, anchors, ``$defs``, embedded
  ``$id`` resources). The validators' registry refuses to retrieve anything, so a schema stored
  before this check existed still never fetches; ``schema_problems`` refuses it at save.
- ``pattern`` and ``patternProperties`` (and ``additionalProperties``' use of them) run on RE2,
  which never backtracks: matching is linear in the input. A pattern RE2 cannot compile
  (look-around, back-references) is refused at save, never handed to Python's ``re``.
- Every evaluation has a budget of keyword evaluations, and a reference cycle that does not
  descend into the input is refused at save; running out, or recursing too deep, is a
  validation error, never a 500 or a worker stuck for minutes.
- ``uniqueItems`` is linear (jsonschema's compares every pair of objects).
- ``format: email`` (with ``formats=True``) refuses control characters (CR, LF, NUL...): an
  address must not smuggle a header into an email.
"""

from config.json_schema.documents import MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES, schema_problems
from config.json_schema.evaluation import FORMATS, MAX_EVALUATIONS, error_line, schema_errors
from config.json_schema.patterns import MAX_PATTERN_CHARS, PatternRefused, compiled_pattern

__all__ = [
    "FORMATS",
    "MAX_EVALUATIONS",
    "MAX_PATTERN_CHARS",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_NODES",
    "PatternRefused",
    "compiled_pattern",
    "error_line",
    "schema_errors",
    "schema_problems",
]
