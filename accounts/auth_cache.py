"""Bearer tokens already checked, with the membership they act through, in the shared cache.

Every API request used to read its token (with user and organization) and its membership:
two queries and four model instances before the view ran. A live token's answer is kept in
the shared cache (Redis) under its hash, stamped with the *auth generation*; one MGET reads
the entry and the current generation.

Invalidation: any save or delete of a token, a membership, a user or an organization bumps
the generation (signals, connected in AccountsConfig.ready()), which voids every entry at
once — a revoked token, a disabled user, a changed role fail on the very next request, in
every process. Such writes are rare beside reads, so voiding all entries costs little. The
one bulk update of these rows that sends no signal is ``last_used_at`` (which decides
nothing). Entries also expire after ``TTL`` seconds. What is cached is only what was true
when the entry was written; revocation, expiry and the active flags are checked again on
every hit. When the cache is unreachable the request is answered from the database.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

TTL = 300
GENERATION_KEY = "auth:generation"


def _entry_key(token_hash: str) -> str:
    return f"auth:token:{token_hash}"


def lookup(token_hash: str) -> tuple[Any, tuple[Any, Any] | None]:
    """(generation, (token, membership) or None).

    The generation is read before the caller reads the database on a miss and is the one
    its entry is stamped with: a change committed in between bumps it, so an entry read
    before that change is never taken for current (``store``)."""
    try:
        found = cache.get_many([GENERATION_KEY, _entry_key(token_hash)])
        generation, entry = found.get(GENERATION_KEY), found.get(_entry_key(token_hash))
        if generation is None:
            # First use, or the key was lost (flush, eviction): a value no old entry carries.
            cache.add(GENERATION_KEY, time.time_ns(), timeout=None)
            return cache.get(GENERATION_KEY), None
    except Exception:  # the cache is a shortcut; the database still answers
        logger.warning("auth cache unavailable; token read from the database", exc_info=True)
        return None, None
    if entry is None or entry[0] != generation:
        return generation, None
    return generation, (entry[1], entry[2])


def store(token_hash: str, generation: Any, token: Any, membership: Any) -> None:
    """Remember a live token and its membership under the generation read before them."""
    if generation is None:
        return
    try:
        cache.set(_entry_key(token_hash), (generation, token, membership), timeout=TTL)
    except Exception:
        logger.warning("auth cache unavailable; token not cached", exc_info=True)


def invalidate_all(**_: Any) -> None:
    """Void every cached token (a signal receiver: any auth-relevant row changed).

    A new generation value rather than an increment: an increment of a lost key would start
    again at a value old entries may carry. When the cache cannot be written it cannot be
    read either (requests fall back to the database); entries it still holds when it comes
    back expire within ``TTL``. Logged as an error."""
    try:
        cache.set(GENERATION_KEY, time.time_ns(), timeout=None)
    except Exception:
        logger.error("auth cache generation could not be bumped; cached tokens may be stale", exc_info=True)


def on_change(sender: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """post_save/post_delete: voids the cache now and again once the change commits.

    Now, so this process's next request already sees it; after the commit, because a request
    that read the rows before the commit may have stored them since."""
    if update_fields is not None and set(update_fields) <= {"last_used_at", "last_login"}:
        return  # the token's own use stamp, a login's time: they decide nothing
    invalidate_all()
    transaction.on_commit(invalidate_all)
