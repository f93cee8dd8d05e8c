"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with key rotation.

``FIELD_ENCRYPTION_KEY`` holds one or more Fernet keys, comma-separated: the first encrypts,
every one of them decrypts, so a key is rotated by putting the new one first and
re-saving the rows (``reencrypt``). Without it (development and tests only — production
settings refuse to start) a key is derived from ``SECRET_KEY`` with HKDF, so a development
database stays readable across restarts.

Use ``EncryptedTextField`` on a model, or ``encrypt``/``decrypt`` directly. Show a secret to
people only through ``mask`` (the last four characters).
"""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

__all__ = ["DecryptionError", "EncryptedTextField", "decrypt", "encrypt", "mask", "reencrypt"]


class DecryptionError(Exception):
    """A stored value no configured key can open (wrong key, or tampered with)."""


def _derived_key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"agentry-field-encryption", info=b"fernet")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


@cache
def _fernet(raw_keys: str, secret_key: str) -> MultiFernet:
    keys = [k.strip() for k in raw_keys.split(",") if k.strip()]
    if not keys:
        return MultiFernet([Fernet(_derived_key(secret_key))])
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except ValueError as exc:
        # Never echo the key itself.
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), comma-separated; "
            "make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from exc


def _current() -> MultiFernet:
    # Keyed on the settings values, so tests that override them get the matching keys.
    return _fernet(getattr(settings, "FIELD_ENCRYPTION_KEY", "") or "", settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return _current().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("the value cannot be decrypted with the configured FIELD_ENCRYPTION_KEY") from exc


def reencrypt(token: str) -> str:
    """The same secret under the first (newest) key."""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("the value cannot be decrypted with the configured FIELD_ENCRYPTION_KEY") from exc


def mask(value: str | None) -> str:
    """What people may see of a secret: its last four characters."""
    if not value:
        return ""
    return "…" + value[-4:] if len(value) > 4 else "…"


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; Python code sees the clear text.

    Not searchable or orderable in SQL (every token differs). Empty strings are stored as
    they are, so "no secret" needs no key.
    """

    description = "Text encrypted at rest (Fernet)"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))
