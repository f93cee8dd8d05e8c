"""Pure parts: the extraction answer's validation, the history window, chunking."""

from __future__ import annotations

import json

import pytest

from memory.chunking import ExtractionError, chunk_text, extract_text, guess_format
from memory.services import extraction_parse, history_window
from tests.memory.conftest import make_pdf


def test_extraction_parse_keeps_valid_items_and_drops_bad_ones():
    answer = json.dumps(
        {
            "memories": [
                {
                    "type": "fact",
                    "content": " Acme is in Berlin. ",
                    "confidence": 0.9,
                    "importance": 7,
                    "tags": ["geo"],
                },
                {"type": "fact", "content": ""},
                {"type": "preference", "content": "x", "confidence": 3},
                {"content": "no type"},
                {"type": "relationship", "content": "Jane reports to Mike."},
            ],
            "lessons": ["Check the address first."],
            "should_repeat": False,
        }
    )
    parsed = extraction_parse(f"```json\n{answer}\n```")
    assert [(m.memory_type, m.content) for m in parsed.memories] == [
        ("fact", "Acme is in Berlin."),
        ("relationship", "Jane reports to Mike."),
    ]
    assert parsed.memories[0].tags == ["geo"] and parsed.memories[1].confidence == 0.8
    assert parsed.lessons == ["Check the address first."] and parsed.should_repeat is False
    assert len(parsed.problems) == 3


@pytest.mark.parametrize("answer", ["", "nope", "[]", '{"memories": {}}', json.dumps({"memories": [{}] * 21})])
def test_extraction_parse_refuses_malformed_answers(answer):
    parsed = extraction_parse(answer)
    assert parsed.memories == [] and parsed.problems


def turns(*pairs):
    return [{"role": r, "content": c, "tokens": len(c) // 4 or 1} for r, c in pairs]


def test_history_window_drops_the_oldest_first():
    messages = turns(("user", "a" * 40), ("assistant", "b" * 40), ("user", "c" * 40), ("assistant", "d" * 40))
    assert [m["content"][0] for m in history_window(messages, max_messages=10, max_tokens=1000)] == list("abcd")
    assert [m["content"][0] for m in history_window(messages, max_messages=2, max_tokens=1000)] == list("cd")
    # 25 tokens: room for "d" and "c" (10 each) only.
    assert [m["content"][0] for m in history_window(messages, max_messages=10, max_tokens=25)] == list("cd")
    # A window that would start with an assistant turn starts at the next user turn.
    assert [m["content"][0] for m in history_window(messages, max_messages=3, max_tokens=1000)] == list("cd")
    assert history_window(messages, max_messages=10, max_tokens=5) == []
    assert set(history_window(messages, max_messages=10, max_tokens=1000)[0]) == {"role", "content"}


def test_extract_text_per_format():
    assert extract_text(b"plain \xc3\xa9t\xc3\xa9", "text") == "plain été"
    assert extract_text("# Title\n\nBody".encode("utf-16"), "markdown") == "# Title\n\nBody"
    html = (
        b"<html><head><title>T</title><style>p{}</style><script>alert(1)</script></head>"
        b"<body><h2>Refunds</h2><p>Refunds take <b>5</b> days.</p><ul><li>One</li><li>Two</li></ul></body></html>"
    )
    text = extract_text(html, "html")
    assert "## Refunds" in text and "Refunds take 5 days." in text and "alert" not in text and "p{}" not in text
    assert "One" in text and "Two" in text
    assert extract_text(make_pdf("Shipping takes three days."), "pdf") == "Shipping takes three days."
    for data, fmt in ((b"   ", "text"), (b"%PDF-1.4 broken", "pdf"), (b"\x00\x01\x02", "text"), (b"x", "docx")):
        with pytest.raises(ExtractionError):
            extract_text(data, fmt)


def test_guess_format():
    assert guess_format("a.PDF") == "pdf" and guess_format("x.md") == "markdown"
    assert guess_format("x.htm") == "html" and guess_format("x.txt") == "text"
    assert guess_format("blob", "text/html; charset=utf-8") == "html" and guess_format("x.docx") is None


def test_chunks_follow_headings_and_overlap():
    paragraph = " ".join(f"Sentence number {i} says something specific." for i in range(40))
    text = f"Intro line.\n\n# Returns\n\n{paragraph}\n\n## Shipping\n\nShips in 3 days.\n\n```\n# not a heading\n```"
    chunks = chunk_text(text, max_tokens=60, overlap_tokens=10)
    assert chunks[0].heading == "" and chunks[0].content == "Intro line."
    returns = [c for c in chunks if c.heading == "Returns"]
    assert len(returns) > 3 and all(len(c.content) <= 60 * 4 + 2 for c in returns)
    # Each chunk after the first of a section starts with the end of the previous one.
    first_tail = returns[0].content.split()[-1]
    assert first_tail in returns[1].content.split()[:12]
    shipping = [c for c in chunks if c.heading == "Shipping"]
    assert len(shipping) == 1 and "# not a heading" in shipping[0].content
    assert [c.position for c in chunks] == list(range(len(chunks)))
    # A "word" longer than a chunk is cut, never lost.
    long_word = "x" * 1000
    assert "".join(c.content for c in chunk_text(long_word, max_tokens=50, overlap_tokens=0)) == long_word
