"""Evaluating an instance against a tenant's schema: jsonschema's validators with the keywords
that could backtrack or run away replaced, a budget, and a registry that never fetches."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import cache, lru_cache
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from jsonschema import FormatChecker, ValidationError
from jsonschema.exceptions import UnknownType
from jsonschema.validators import extend
from referencing.exceptions import Unresolvable

from config.json_schema.documents import DEFAULT_DIALECT, NO_FETCH, REFERENCES, dialect, scan
from config.json_schema.patterns import PatternRefused, compiled_pattern, pattern_search

logger = logging.getLogger(__name__)

# The work one validation may do, in keyword evaluations (~5 µs each; a reference costs ten,
# since jsonschema resolves it anew each time, ~50 µs): about a second of CPU at most. A 1 MB
# body of small objects under a plain schema takes ~130,000; a schema that branches
# exponentially (anyOf of anyOf of the same $ref) stops here instead of running for hours.
MAX_EVALUATIONS = 200_000
_REFERENCE_COST = 10
# Frames kept free below the recursion limit: between two references a schema nests at most
# MAX_SCHEMA_DEPTH levels, a few frames each.
_FRAME_HEADROOM = 250
# Errors collected before sorting, when the caller shows only the first few.
_MAX_COLLECTED = 100
_CACHED_VALIDATORS = 256


class _OverBudget(Exception):
    pass


class _TooDeep(Exception):
    pass


# --- Keywords replaced in the validators ----------------------------------------------------


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not pattern_search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if pattern_search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    # jsonschema's own joins patternProperties into one regex for Python's re.
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [key for key in instance if key not in properties and not any(pattern_search(p, key) for p in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        names = ", ".join(repr(key) for key in sorted(extras))
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            yield ValidationError(f"{names} {verb} not match any of the regexes: {', '.join(map(repr, patterns))}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({names} {verb} unexpected)")


def _identity(value: Any) -> Any:
    """A hashable stand-in equal exactly when jsonschema's ``equal`` says so (1 == 1.0, True != 1)."""
    if value is True or value is False:
        return ("bool", value)
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, dict):
        return ("object", frozenset((key, _identity(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("array", tuple(_identity(item) for item in value))
    return ("value", value)


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    # jsonschema's compares every pair when the items are objects: minutes for 20,000 of them.
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for index, item in enumerate(instance):
        identity = _identity(item)
        if identity in seen:
            yield ValidationError(f"The array has non-unique elements (item {index} repeats an earlier one).")
            return
        seen.add(identity)


_REPLACED: dict[str, Callable] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "uniqueItems": _unique_items,
}
_BUDGET: ContextVar[list[int] | None] = ContextVar("agentry_schema_budget", default=None)


def _counted(keyword: Callable, cost: int, *, reference: bool) -> Callable:
    def evaluate(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget[0] -= cost
            if budget[0] < 0:
                raise _OverBudget
        if reference and _stack_is_deep():
            raise _TooDeep
        return keyword(validator, value, instance, schema)

    return evaluate


def _stack_is_deep() -> bool:
    """Whether the Python stack is near the recursion limit. Checked on references (every loop
    of a schema goes through one): stopped here, a loop is a clear error; let to the limit, the
    RecursionError may surface inside referencing's Rust maps as a panic no handler expects."""
    try:
        sys._getframe(sys.getrecursionlimit() - _FRAME_HEADROOM)
    except ValueError:
        return False
    return True


@cache
def _safe_class(base: type) -> type:
    keywords = {name: _REPLACED.get(name, function) for name, function in base.VALIDATORS.items()}  # type: ignore[attr-defined]
    counted = {
        name: _counted(function, _REFERENCE_COST if name in REFERENCES else 1, reference=name in REFERENCES)
        for name, function in keywords.items()
    }
    return extend(base, validators=counted)  # type: ignore[arg-type]


# --- Formats -------------------------------------------------------------------------------


def _is_control(char: str) -> bool:
    return char < " " or "\x7f" <= char <= "\x9f"


def _is_email(instance: Any) -> bool:
    if not isinstance(instance, str):
        return True
    if any(_is_control(char) for char in instance):
        return False  # CR/LF would start a new header line; NUL and the rest have no place either
    try:
        validate_email(instance)
    except DjangoValidationError:
        return False
    return True


def _is_regex(instance: Any) -> bool:
    if not isinstance(instance, str):
        return True
    compiled_pattern(instance)
    return True


def _format_checker() -> FormatChecker:
    checker = FormatChecker()
    checker.checks("email")(_is_email)
    checker.checks("idn-email")(_is_email)
    checker.checks("regex", raises=PatternRefused)(_is_regex)
    return checker


FORMATS = _format_checker()


# --- Evaluating ----------------------------------------------------------------------------


@lru_cache(maxsize=_CACHED_VALIDATORS)
def _prepared(text: str, formats: bool) -> Any:
    """The validator for a schema's JSON text, or why it cannot be evaluated. Cached by the
    text: the gateway validates every tool call against one of a few schemas. The validator
    holds its own copy of the schema, so a caller changing its dict later changes nothing."""
    schema = json.loads(text)
    refusals = scan(schema)[2]
    if refusals:
        return f"The schema cannot be evaluated: {refusals[0]}"
    base = dialect(schema) or DEFAULT_DIALECT
    if isinstance(schema, dict) and "$schema" in schema:
        # Chosen above; left in, a "$ref": "#" would make jsonschema pick its own class again.
        schema = {key: value for key, value in schema.items() if key != "$schema"}
    return _safe_class(base)(schema, registry=NO_FETCH, format_checker=FORMATS if formats else None)


def schema_errors(
    schema: Any, instance: Any, *, formats: bool = False, limit: int | None = 10
) -> list[ValidationError]:
    """What is wrong with ``instance`` under ``schema`` (empty: it is valid), sorted by path.

    A schema that cannot be evaluated safely, or whose evaluation runs out of its budget,
    gives one error saying so (the instance is not accepted). ``formats`` turns ``format``
    into an assertion (tools' arguments), with the checkers above.
    """
    if not isinstance(schema, (dict, bool)):
        return [ValidationError("The schema is not a JSON Schema object.")]
    try:
        text = json.dumps(schema)
    except (TypeError, ValueError, RecursionError):
        return [ValidationError("The schema cannot be evaluated: it is not JSON.")]
    validator = _prepared(text, formats)
    if isinstance(validator, str):
        return [ValidationError(validator)]
    errors: list[ValidationError] = []
    token = _BUDGET.set([MAX_EVALUATIONS])
    try:
        for error in validator.iter_errors(instance):
            errors.append(error)
            if limit is not None and len(errors) >= _MAX_COLLECTED:
                break
    except _OverBudget:
        errors.append(ValidationError(f"Too costly to check against this schema (over {MAX_EVALUATIONS} checks)."))
    except (_TooDeep, RecursionError):
        errors.append(ValidationError("The schema refers to itself too deeply for this input to be checked."))
    except Unresolvable as exc:
        errors.append(
            ValidationError(
                f"$ref {getattr(exc, 'ref', '')!r} cannot be resolved: only references within the schema are."
            )
        )
    except PatternRefused as exc:
        errors.append(ValidationError(str(exc)))
    except (UnknownType, TypeError, AttributeError) as exc:
        # A malformed schema saved before it was checked (e.g. "type": "nothing-like-this").
        logger.warning("schema could not be evaluated: %s", exc)
        errors.append(ValidationError(f"The schema cannot be evaluated; it is not a valid JSON Schema ({exc})."))
    finally:
        _BUDGET.reset(token)
    errors.sort(key=lambda e: ([str(p) for p in e.absolute_path], e.message))
    return errors if limit is None else errors[:limit]


def error_line(error: ValidationError) -> str:
    """``path: message`` ((root) for the instance itself)."""
    return f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
