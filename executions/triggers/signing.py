"""HMAC-SHA256 signatures of webhook bodies, the same both ways (hooks in, deliveries out).

    X-Agentry-Timestamp: 1718035200
    X-Agentry-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>." + raw body)>

The timestamp is inside the signed bytes, so a captured request cannot be replayed later with
a fresh timestamp; receivers refuse timestamps outside a tolerance and remember signatures
they accepted within it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Agentry-Signature"
TIMESTAMP_HEADER = "X-Agentry-Timestamp"
PREFIX = "sha256="


def secret_generate(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def signature_for(secret: str, timestamp: int | str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def signature_problem(
    *, secret: str, signature: str | None, timestamp: str | None, body: bytes, now: float, tolerance: int
) -> tuple[str, str] | None:
    """(error code, message) when the request is not signed with ``secret`` now; else None."""
    if not signature or not timestamp:
        return "NotAuthenticated", f"Sign the request: {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} headers are required."
    # ASCII digits: str.isdigit() alone takes "²" (which int() refuses) and other scripts' digits.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return "InvalidToken", f"{TIMESTAMP_HEADER} must be a Unix time in seconds."
    if abs(now - int(timestamp)) > tolerance:
        return "InvalidToken", f"The timestamp is more than {tolerance} seconds away from now; sign the request again."
    if not hmac.compare_digest(signature_for(secret, timestamp, body), signature.strip()):
        return "InvalidToken", "The signature does not match the body."
    return None
