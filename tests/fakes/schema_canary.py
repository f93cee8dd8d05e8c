"""A JSON document with a secret in it, served on 127.0.0.1: what a tenant's ``$ref`` would
make the platform fetch and echo back if it resolved remote references. It records every
request; the tests assert it got none and that the secret appears nowhere."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .http_fakes import FakeHttpServer

__all__ = ["SCHEMA_SECRET", "schema_document"]

SCHEMA_SECRET = "canary-secret-7f3a"


@pytest.fixture
def schema_document() -> Iterator[FakeHttpServer]:
    """``schema_document.url("/secret")`` serves ``{"type": "integer", "description": SECRET}``."""
    with FakeHttpServer() as server:
        server.route("GET", "/secret", json={"type": "integer", "description": SCHEMA_SECRET})
        yield server
