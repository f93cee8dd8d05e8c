"""Rendering an organization's email templates, sandboxed.

Django's template language on an engine of its own: no loaders (no ``include``/``extends``),
no ``{% load %}``, only the tags of ``tools.email_template_library``. The context is plain
JSON data (strings, numbers, booleans, null, lists and objects of them) copied from the tool's
``variables``, so a template can reach no Python object's attributes; names starting with an
underscore are refused by the engine anyway. Loops may not nest, lists are short and the
sizes are bounded, so what one render costs is bounded too. The body is autoescaped (HTML
special characters in the values come out as entities; ``|safe`` opts out); the subject is
not (it is a header: one line, checked after rendering).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from django.template import Context, Engine, TemplateSyntaxError
from django.template.defaulttags import ForNode

MAX_SUBJECT_CHARS = 500
MAX_BODY_CHARS = 50_000
MAX_RENDERED_BODY_CHARS = 100_000  # what email_send's body takes
MAX_VARIABLES_BYTES = 16_000
MAX_LIST_ITEMS = 100
MAX_DEPTH = 4
ONE_LINE = re.compile(r"^[^\x00-\x1f\x7f]*$")


class _SandboxEngine(Engine):
    # Engine adds Django's default tag libraries (debug, include, ...) to any builtins given.
    default_builtins: ClassVar[list[str]] = []


ENGINE = _SandboxEngine(
    loaders=[],
    libraries={},
    builtins=["tools.email_template_library"],
    autoescape=True,
    string_if_invalid="",
    debug=False,
)


class TemplateProblem(ValueError):
    """The template or its variables cannot be used; the message says why."""


def template_problems(*, subject: str, body: str) -> dict[str, list[str]]:
    """What is wrong with a template, by field (empty: it can be saved)."""
    problems: dict[str, list[str]] = {}
    for field, text, limit in (("subject", subject, MAX_SUBJECT_CHARS), ("body", body, MAX_BODY_CHARS)):
        if len(text) > limit:
            problems[field] = [f"At most {limit} characters."]
            continue
        try:
            compiled = ENGINE.from_string(text)
        except TemplateSyntaxError as exc:
            problems[field] = [f"Not a valid template: {exc}"]
            continue
        loops: list[Any] = compiled.nodelist.get_nodes_by_type(ForNode)
        if any(loop.nodelist_loop.get_nodes_by_type(ForNode) for loop in loops):
            problems[field] = ["Loops may not nest (a {% for %} inside another)."]
    return problems


def _plain(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise TemplateProblem(f"variables nest deeper than {MAX_DEPTH} levels.")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list):
        if len(value) > MAX_LIST_ITEMS:
            raise TemplateProblem(f"A list in variables has more than {MAX_LIST_ITEMS} items.")
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item, depth + 1) for key, item in value.items()}
    raise TemplateProblem("variables must be JSON data.")


def template_render(*, subject: str, body: str, variables: dict[str, Any] | None) -> tuple[str, str]:
    """(subject, body) rendered with ``variables``; TemplateProblem when it cannot be."""
    variables = variables or {}
    if not isinstance(variables, dict):
        raise TemplateProblem("variables must be an object.")
    if len(json.dumps(variables, default=str)) > MAX_VARIABLES_BYTES:
        raise TemplateProblem(f"variables are larger than {MAX_VARIABLES_BYTES} bytes of JSON.")
    context = _plain(variables)
    try:
        rendered_subject = ENGINE.from_string(subject).render(Context(context, autoescape=False)).strip()
        rendered_body = ENGINE.from_string(body).render(Context(context, autoescape=True))
    except TemplateSyntaxError as exc:
        raise TemplateProblem(str(exc)) from exc
    if not rendered_subject or len(rendered_subject) > MAX_SUBJECT_CHARS or not ONE_LINE.match(rendered_subject):
        raise TemplateProblem("The rendered subject must be one line of 1 to 500 characters.")
    if not rendered_body.strip() or len(rendered_body) > MAX_RENDERED_BODY_CHARS:
        raise TemplateProblem(f"The rendered body must be 1 to {MAX_RENDERED_BODY_CHARS} characters.")
    return rendered_subject, rendered_body
