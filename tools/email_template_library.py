"""The only tags and filters an email template may use (tools.email_templates).

Django's built-in filters but the padding ones (``center``, ``ljust``, ``rjust`` make a string
of any width), and its built-in tags minus those that reach beyond the template's own data:
``debug`` (prints the context and sys.modules), ``load`` (other libraries),
``include``/``extends``/``block`` (the loaders; not imported at all), ``url`` and
``csrf_token`` (the site), ``lorem`` (output of any size) and ``querystring`` (a request).
``for`` refuses a sequence longer than MAX_LOOP_ITEMS (a long string iterates per character).
"""

from __future__ import annotations

from typing import Any

from django.template import Library, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import Parser, Token
from django.template.defaulttags import ForNode

MAX_LOOP_ITEMS = 100
ALLOWED_TAGS = (
    "autoescape", "comment", "cycle", "filter", "firstof", "if", "ifchanged", "now", "regroup",
    "resetcycle", "spaceless", "templatetag", "verbatim", "widthratio", "with",
)  # fmt: skip
UNBOUNDED_FILTERS = ("center", "ljust", "rjust")


class BoundedForNode(ForNode):
    def render(self, context: Any) -> str:
        sequence: Any = self.sequence
        values = sequence.resolve(context, ignore_failures=True)
        if values is not None and hasattr(values, "__len__") and len(values) > MAX_LOOP_ITEMS:
            raise TemplateSyntaxError(f"A loop may run over at most {MAX_LOOP_ITEMS} items.")
        return super().render(context)


register = Library()
register.filters.update(
    {name: f for name, f in defaultfilters.register.filters.items() if name not in UNBOUNDED_FILTERS}
)
for _name in ALLOWED_TAGS:
    register.tags[_name] = defaulttags.register.tags[_name]


@register.tag("for")
def bounded_for(parser: Parser, token: Token) -> BoundedForNode:
    node = defaulttags.do_for(parser, token)
    node.__class__ = BoundedForNode
    return node  # type: ignore[return-value]
