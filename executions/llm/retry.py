"""Bounded retries with exponential backoff and jitter, shared by every adapter.

The SDKs can retry by themselves, but each has its own rules (they honour a ``Retry-After`` of
up to two minutes per attempt, and their counters are per client, not per call). We build the
SDK clients with ``max_retries=0`` and retry here, so one ``ProviderConfig`` bounds the whole
call the same way for every provider, and so the registry's fallback can move to the next
provider instead of sleeping through a long ``Retry-After``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import LLMError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base: float = 0.5
    cap: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before repeat number ``attempt`` (0-based); None: do not wait, give up."""
        if retry_after is not None and retry_after > 0:
            # The provider told us when; waiting longer than our cap would stall a worker thread,
            # so give up on this config and let fallback (or the task's own retry) take over.
            return retry_after if retry_after <= self.cap else None
        exponential = min(self.cap, self.base * (2**attempt))
        # "Equal jitter": half fixed, half random, so bursts of workers that failed together
        # do not come back together, yet no wait collapses to zero.
        return exponential / 2 + random.uniform(0, exponential / 2)  # noqa: S311 (not crypto)


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    translate: Callable[[Exception], LLMError | None],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn``; on a retryable LLMError repeat up to ``policy.max_retries`` times.

    Exceptions are translated with ``translate`` (SDK error -> LLMError); anything it does not
    recognise propagates unchanged. The error finally raised records how many attempts were made.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            error = exc if isinstance(exc, LLMError) else translate(exc)
            if error is None:
                raise
            error.attempts = attempt + 1
            wait = policy.delay(attempt, error.retry_after) if error.retryable else None
            if attempt >= policy.max_retries or wait is None:
                if error is exc:
                    raise
                if error.status_code:
                    # The SDK's exception text embeds the raw error body; ours carries a redacted
                    # summary of it. Drop the chain so tracebacks in logs cannot echo a key back.
                    raise error from None
                raise error from exc
            log.info(
                "LLM call failed (%s), retry %d/%d in %.2fs",
                error,
                attempt + 1,
                policy.max_retries,
                wait,
            )
            sleep(wait)
            attempt += 1
