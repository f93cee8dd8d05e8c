"""Memory test fixtures: the real local embedder (loaded once per session), agents, helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from memory.embedders import LocalEmbedder


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    """The local all-MiniLM-L6-v2 embedder; the ONNX model loads once per process."""
    local = LocalEmbedder()
    local.embed(["warm up"])
    return local


@pytest.fixture
def agent(make_agent):
    return make_agent(name="Memory Agent")


@pytest.fixture
def other_agent(make_agent):
    return make_agent(name="Other Agent")


@pytest.fixture
def store(org, agent, embedder) -> Callable[..., Any]:
    """store(content, memory_type="fact", agent=..., organization=..., **fields) -> StoreResult."""
    from memory.services import memory_store

    def make(content: str, memory_type: str = "fact", *, agent=agent, organization=org, **fields: Any):
        return memory_store(
            organization=organization,
            agent=agent,
            data={"content": content, "memory_type": memory_type, **fields},
            embedder=embedder,
        )

    return make


def make_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` in Helvetica (hand-built: no PDF writer needed)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out
