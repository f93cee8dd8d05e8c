"""Keeping the credentials a tool call carried out of what the call gives back.

A service may echo what it was sent — an error page quoting the request, a debug endpoint,
a hostile server — and not always verbatim: the token without its ``Bearer `` prefix, the
``user:password`` inside a Basic header, URL-encoded, JSON-escaped inside a string, cut
short or split across two fields. Whatever the handler returns goes to the model, the act
step, the call log, the event stream, the admin and the logs, so the gateway redacts it
first (``Redactor.value``), before the result is bounded (a cut must not leave half a
secret behind).

For each secret the call carried (``Invocation.carry``), ``secret_forms`` lists the spellings
it could come back in, and every run of ``FRAGMENT_CHARS`` or more characters taken from the
credential's own spellings is looked for too: that catches a secret cut short or split in
two, whatever the split. All of them are found in the original text and replaced at once. The price is that ordinary text sharing
FRAGMENT_CHARS consecutive characters with a credential is masked as well (only in the
answers of the calls that carried it); pieces shorter than that are not caught.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
# A value or piece shorter than this is too common a string to mask wherever it appears
# (and too short to be a credential worth the name).
MIN_SECRET_CHARS = 6
# A run of this many characters of a credential is taken as (part of) the credential.
FRAGMENT_CHARS = 8
# Authorization schemes: the credential is what follows them.
_SCHEME = re.compile(r"^\s*(bearer|basic|token|digest|apikey|api-key|key|sso-key|otp)\s+", re.IGNORECASE)
# Where credentials are joined (user:password, key=value, "a, b", "a;b").
_SEPARATORS = re.compile(r"[\s:;,=&|]+")


def _encodings(value: str) -> set[str]:
    """The spellings ``value`` takes when a service re-encodes it."""
    as_json = json.dumps(value)[1:-1]
    return {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        as_json,
        json.dumps(value, ensure_ascii=False)[1:-1],
        json.dumps(as_json)[1:-1],  # JSON text quoted inside another JSON string
        escape(value, quote=True),
    }


def _base64_forms(value: str) -> set[str]:
    raw = value.encode()
    standard = base64.b64encode(raw).decode()
    return {standard, standard.rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")}


def _credentials(secret: str) -> set[str]:
    """The secret material inside one configured value: the value without its scheme, what
    a Basic header decodes to, and the pieces either is joined from."""
    value = secret.strip()
    scheme = _SCHEME.match(value)
    credential = value[scheme.end() :].strip() if scheme else value
    found = {credential}
    if scheme and scheme.group(1).lower() == "basic":
        # Not base64 after all: then the credential as written is what was sent.
        with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
            found.add(base64.b64decode(credential, validate=True).decode())
    for item in list(found):
        # user:password splits at the first colon (RFC 7617): the password may hold more.
        user, colon, password = item.partition(":")
        if colon:
            found.update((user, password))
        found.update(_SEPARATORS.split(item))
    return {item for item in found if len(item) >= MIN_SECRET_CHARS}


def secret_forms(secret: str) -> set[str]:
    """Every spelling of ``secret`` a service could echo, each at least MIN_SECRET_CHARS long."""
    value = secret.strip()
    forms = {value} | _encodings(value)
    for credential in _credentials(secret):
        forms |= _encodings(credential)
        if ":" in credential:  # user:password as a Basic header would carry it
            forms |= _base64_forms(credential)
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


class Redactor:
    """Replaces the secrets a call carried, in any form, in anything JSON-like."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        sources: set[str] = set()
        for secret in secrets:
            if not isinstance(secret, str) or len(secret.strip()) < MIN_SECRET_CHARS:
                continue
            forms |= secret_forms(secret)
            # Fragments come from the credential's own spellings, never from the scheme word
            # (every "Bearer …" header starts with "Bearer x").
            sources |= {form for credential in _credentials(secret) for form in _encodings(credential)}
        fragments = {
            source[i : i + FRAGMENT_CHARS] for source in sources for i in range(len(source) - FRAGMENT_CHARS + 1)
        }
        self._forms = frozenset(forms)
        self._needles = tuple(forms | fragments)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def text(self, value: str) -> str:
        if not self._forms:
            return value
        # Every occurrence of a whole form or a fragment, found in the original text and
        # merged, then replaced in one pass (replacing forms one by one would leave the
        # characters around a replaced piece that only a fragment spanning it would match).
        # str.find is a C-speed scan: cheaper than sliding a window over a long answer here.
        spans: list[tuple[int, int]] = []
        for needle in self._needles:
            start = value.find(needle)
            while start != -1:
                spans.append((start, start + len(needle)))
                start = value.find(needle, start + 1)
        if not spans:
            return value
        spans.sort()
        merged = [list(spans[0])]
        for start, end in spans[1:]:
            if start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        parts, last = [], 0
        for start, end in merged:
            parts += [value[last:start], REDACTED]
            last = end
        parts.append(value[last:])
        return "".join(parts)

    def value(self, value: Any) -> Any:
        """``value`` (a tool's JSON-able answer) with every string redacted, keys included."""
        if not self._forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k) if isinstance(k, str) else k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(item) for item in value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # A numeric secret (a PIN-like key) echoed as a number.
            return REDACTED if self.text(str(value)) != str(value) else value
        return value
