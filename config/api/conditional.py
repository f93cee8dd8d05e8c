"""Conditional requests (RFC 9110 §13): strong ETags and ``If-Match``.

An edit sent with ``If-Match`` applies only if the resource is still the one the client read;
otherwise 412 ``PreconditionFailed``. Without the header the last write wins.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from config.api.errors import ApiError

IF_MATCH = "If-Match"


def strong_etag(content: Any) -> str:
    """A strong entity tag for ``content`` (anything JSON can say): equal content, equal tag."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def if_match_holds(header: str | None, etag: str) -> bool:
    """``If-Match`` compares strongly: a weak tag (``W/"…"``) never matches; ``*`` matches any."""
    if header is None:
        return True
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or etag in tags


def require_if_match(header: str | None, etag: str, *, what: str) -> None:
    if not if_match_holds(header, etag):
        raise ApiError(
            code="PreconditionFailed",
            message=f"The {what} changed since you read it: read it again (its ETag) and redo your change.",
            details={"if_match": header, "etag": etag},
        )
