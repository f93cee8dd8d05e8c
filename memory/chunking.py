"""From an uploaded document to chunks: text extraction per format, then chunking.

Chunks follow the document's structure: Markdown headings (and HTML headings, which become
Markdown ones) start a section, paragraphs are packed into chunks of about
MEMORY_CHUNK_TOKENS tokens with an overlap, and a paragraph too long for one chunk is cut at
sentence ends, then at words. The local embedder reads at most 256 word pieces, so chunks stay
below that (a token is counted as four characters, the usual estimate for English text).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser

CHARS_PER_TOKEN = 4

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class ExtractionError(ValueError):
    """The document cannot be read as the format it claims."""


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN) if text else 0


# -- extraction --------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    # Latin-1 decodes anything; text that is neither UTF-8 nor UTF-16 is most often it.
    text = data.decode("latin-1")
    if "\x00" in text:
        raise ExtractionError("The file is binary, not text.")
    return text


class _HTMLText(HTMLParser):
    """Visible text of an HTML page: headings as Markdown headings, blocks as paragraphs."""

    SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    BLOCK = frozenset(
        {"p", "div", "section", "article", "li", "tr", "br", "pre", "blockquote", "table", "ul", "ol", "hr"}
    )
    HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.HEADINGS:
            self.parts.append("\n\n" + "#" * self.HEADINGS[tag] + " ")
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.HEADINGS or tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data.strip()
        if not self.skipping:
            self.parts.append(data)


def _html_text(text: str) -> str:
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    body = "".join(parser.parts)
    # Collapse runs of spaces inside lines; keep paragraph breaks.
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in body.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _pdf_text(data: bytes) -> str:
    try:
        from pypdf import PdfReader  # noqa: PLC0415  (optional dependency: its absence is handled (ImportError) where it is used)
        from pypdf.errors import PdfReadError  # noqa: PLC0415  (optional dependency: its absence is handled (ImportError) where it is used)
    except ImportError as exc:  # pragma: no cover - a base dependency
        raise ExtractionError("PDF support needs pypdf (pip install pypdf).") from exc
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractionError("The PDF is encrypted.")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ExtractionError(f"The PDF cannot be read: {exc}") from exc
    return "\n\n".join(p for p in pages if p)


def extract_text(data: bytes, fmt: str) -> str:
    """The document's text; Markdown structure kept (and made from HTML headings)."""
    if fmt == "pdf":
        text = _pdf_text(data)
    elif fmt == "html":
        text = _html_text(_decode(data))
    elif fmt in ("text", "markdown"):
        text = _decode(data)
    else:
        raise ExtractionError(f"Unknown document format {fmt!r}.")
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ExtractionError("The document has no text.")
    return text


def guess_format(filename: str, content_type: str = "") -> str | None:
    name = filename.lower()
    content_type = content_type.split(";")[0].strip().lower()
    if name.endswith(".pdf") or content_type == "application/pdf":
        return "pdf"
    if name.endswith((".html", ".htm")) or content_type in ("text/html", "application/xhtml+xml"):
        return "html"
    if name.endswith((".md", ".markdown")) or content_type == "text/markdown":
        return "markdown"
    if name.endswith(".txt") or content_type.startswith("text/"):
        return "text"
    return None


# -- chunking ----------------------------------------------------------------------------


@dataclass
class Chunk:
    position: int
    content: str
    heading: str
    token_count: int


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """[(heading, paragraphs)] in document order; text before the first heading has none."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    paragraph: list[str] = []

    def close_paragraph() -> None:
        if paragraph:
            joined = "\n".join(paragraph).strip()
            if joined:
                sections[-1][1].append(joined)
            paragraph.clear()

    in_fence = False
    for line in text.split("\n"):
        if line.strip().startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            close_paragraph()
            sections.append((match.group(2).strip(), []))
        elif not line.strip() and not in_fence:
            close_paragraph()
        else:
            paragraph.append(line.rstrip())
    close_paragraph()
    return [(heading, paras) for heading, paras in sections if paras]


def _split_long(paragraph: str, limit: int) -> list[str]:
    """Cut a paragraph longer than ``limit`` characters at sentence ends, then at words."""
    if len(paragraph) <= limit:
        return [paragraph]
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        if len(sentence) <= limit:
            pieces.append(sentence)
            continue
        words, current = sentence.split(), ""
        for word in words:
            while len(word) > limit:  # a "word" longer than a chunk (a URL, base64): hard cut
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(word[:limit])
                word = word[limit:]
            if current and len(current) + 1 + len(word) > limit:
                pieces.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        if current:
            pieces.append(current)
    return pieces


def chunk_text(text: str, *, max_tokens: int = 200, overlap_tokens: int = 40) -> list[Chunk]:
    """Chunks of at most ~``max_tokens`` tokens, each starting with the tail (about
    ``overlap_tokens``) of the previous chunk of the same section, so a fact cut in two is
    still whole in one of them."""
    if max_tokens < 20:
        raise ValueError("max_tokens must be at least 20")
    limit = max_tokens * CHARS_PER_TOKEN
    overlap = min(overlap_tokens * CHARS_PER_TOKEN, limit // 2)
    chunks: list[Chunk] = []

    def emit(heading: str, body: str) -> None:
        body = body.strip()
        if body:
            chunks.append(Chunk(len(chunks), body, heading[:300], estimate_tokens(body)))

    for heading, paragraphs in _sections(text):
        pieces = [piece for paragraph in paragraphs for piece in _split_long(paragraph, limit - overlap)]
        current = ""
        for piece in pieces:
            if current and len(current) + 2 + len(piece) > limit:
                emit(heading, current)
                tail = current[-overlap:] if overlap else ""
                # Start the overlap at a word boundary.
                tail = tail[tail.find(" ") + 1 :] if " " in tail else tail
                current = f"{tail}\n\n{piece}" if tail else piece
            else:
                current = f"{current}\n\n{piece}" if current else piece
        emit(heading, current)
    return chunks
