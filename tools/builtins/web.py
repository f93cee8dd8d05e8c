"""web_scrape: a public page's text, fetched through the SSRF guard."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from tools.builtins.base import Invocation, ToolError
from tools.ssrf import fetch

SCRAPE_MAX_BYTES = 2 * 1024 * 1024
TEXT_MAX_CHARS = 12_000
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe", "object"})
_BLOCK = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer", "nav",
     "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "main", "aside", "form", "dd", "dt"}
)  # fmt: skip
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
_SELECTOR = re.compile(r"^(?P<tag>[a-zA-Z][a-zA-Z0-9-]*)?(?:(?P<kind>[.#])(?P<name>[A-Za-z0-9_-]+))?$")


def _matcher(selector: str | None):
    """A predicate for the simple selectors the tool supports: tag, .class, #id, tag.class, tag#id."""
    if not selector:
        return None
    match = _SELECTOR.match(selector.strip())
    if not match or not (match.group("tag") or match.group("name")):
        raise ToolError(f"Unsupported selector {selector!r}; use tag, .class, #id, tag.class or tag#id.")
    tag, kind, name = (match.group("tag") or "").lower(), match.group("kind"), match.group("name")

    def matches(element: str, attrs: dict[str, str]) -> bool:
        if tag and element != tag:
            return False
        if kind == "#":
            return attrs.get("id") == name
        if kind == ".":
            return name in (attrs.get("class") or "").split()
        return True

    return matches


class _TextExtractor(HTMLParser):
    def __init__(self, selector: str | None):
        super().__init__(convert_charrefs=True)
        self.matches = _matcher(selector)
        self.title = ""
        self.parts: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, starts a selected region)
        self.skip_depth = 0
        self.selected_depth = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        if tag in _VOID:
            if tag == "br":
                self.parts.append("\n")
            return
        selected = bool(self.matches and self.matches(tag, {k: v or "" for k, v in attrs}))
        self.stack.append((tag, selected))
        if selected:
            self.selected_depth += 1
        if tag in _SKIP:
            self.skip_depth += 1
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _VOID:
            return
        # Pop to the matching open tag (HTML in the wild leaves tags unclosed).
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                for open_tag, selected in self.stack[index:]:
                    if selected:
                        self.selected_depth -= 1
                    if open_tag in _SKIP:
                        self.skip_depth -= 1
                del self.stack[index:]
                break
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
            return
        if self.skip_depth:
            return
        if self.matches is not None and not self.selected_depth:
            return
        self.parts.append(data)

    def text(self) -> str:
        raw = "".join(self.parts)
        lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in raw.split("\n"))
        return "\n".join(line for line in lines if line)


def extract_text(html: str, selector: str | None = None) -> tuple[str, str]:
    """(title, text) of an HTML document, scripts and styles left out."""
    parser = _TextExtractor(selector)
    parser.feed(html)
    parser.close()
    return parser.title.strip(), parser.text()


def web_scrape(call: Invocation) -> dict[str, Any]:
    result = fetch(
        "GET",
        call.arguments["url"],
        headers={"User-Agent": "Agentry/1.0 (+web_scrape)", "Accept": "text/html,text/plain;q=0.9,*/*;q=0.1"},
        deadline=call.deadline,
        max_bytes=SCRAPE_MAX_BYTES,
    )
    if result.status_code >= 400:
        raise ToolError(f"The page answered HTTP {result.status_code}.")
    kind = result.content_type
    if kind in ("text/html", "application/xhtml+xml", ""):
        title, text = extract_text(result.text, call.arguments.get("selector"))
    elif kind.startswith("text/") or kind.endswith("json") or kind.endswith("xml"):
        title, text = "", result.text
    else:
        raise ToolError(f"The page is {kind}, not text; only text and HTML pages can be read.")
    truncated = len(text) > TEXT_MAX_CHARS
    return {
        "url": result.url,
        "status": result.status_code,
        "title": title[:300],
        "text": text[:TEXT_MAX_CHARS],
        "truncated": truncated,
        # Web content is data to read, never instructions to follow (see the system prompt).
        "untrusted_content": True,
    }
