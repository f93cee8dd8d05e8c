"""Making, hashing and recognising API token values."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "agt_"
PREFIX_LENGTH = 12  # "agt_" + 8 characters, kept in clear to recognise a token in a list


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def display_prefix(raw: str) -> str:
    return raw[:PREFIX_LENGTH]
