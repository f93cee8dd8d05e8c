"""Regular expressions of tenants' schemas, on RE2: no backtracking, matching linear in the input."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

# RE2's compile time and memory grow with the pattern; a longer one is generated, not written.
MAX_PATTERN_CHARS = 2_000
# RE2's memory per compiled pattern (program and DFA cache); past it RE2 falls back to a
# slower automaton, still linear. Bounded cache: at most ~0.5 GB even if every entry filled up.
_RE2_MAX_MEM = 2 << 20
_CACHED_PATTERNS = 256


class PatternRefused(ValueError):
    """A pattern RE2 cannot run (the message names the construct)."""


def _ecma_to_re2(pattern: str) -> str:
    """ECMA-262 spellings RE2 writes differently: ``\\uXXXX`` is ``\\x{XXXX}``."""
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            hex_digits = pattern[index + 2 : index + 6]
            if escaped == "u" and len(hex_digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in hex_digits):
                out.append("\\x{" + hex_digits + "}")
                index += 6
                continue
            out.append(pattern[index : index + 2])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


@lru_cache(maxsize=_CACHED_PATTERNS)
def compiled_pattern(pattern: str) -> Any:
    """The RE2 program for a JSON Schema pattern; raises PatternRefused naming what RE2 refused."""
    if not isinstance(pattern, str):
        raise PatternRefused(f"Pattern {pattern!r} is not a string.")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternRefused(f"Pattern of {len(pattern)} characters; at most {MAX_PATTERN_CHARS}.")
    options = re2.Options()
    options.log_errors = False  # the refusal is reported to the tenant, not logged as a server error
    options.max_mem = _RE2_MAX_MEM
    try:
        return re2.compile(_ecma_to_re2(pattern), options=options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PatternRefused(
            f"Pattern {pattern!r} cannot be used: {reason}. Patterns run on RE2, which has no "
            "look-around (?=, ?!, ?<=, ?<!) and no back-references (\\1, \\k<name>)."
        ) from None


def pattern_search(pattern: str, text: str) -> bool:
    return compiled_pattern(pattern).search(text) is not None
