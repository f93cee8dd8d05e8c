from __future__ import annotations

import logging
import math

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken

logger = logging.getLogger(__name__)


class TokenRateThrottle(SimpleRateThrottle):
    """Per token (else per user, else per client address), in the shared Redis cache.

    A convenience against runaway clients, not a security measure: quotas are enforced in
    the database. When Redis is unreachable the throttle lets requests through and logs it.

    A sliding-window counter rather than DRF's log of timestamps: two counters per caller (this
    window's and the last one's, weighted by how much of it still overlaps the sliding window),
    read and counted in one Redis round trip with no pickled list to load and store on every
    request (issue #16). As with DRF's, a refused request is not counted (taken back at once).
    """

    scope = "token"

    def get_cache_key(self, request: Request, view) -> str:
        if isinstance(request.auth, ApiToken):
            ident = f"t:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"u:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view) -> bool:
        if self.rate is None:
            return True
        try:
            return self._count(self.get_cache_key(request, view))
        except Exception:  # redis down: do not turn every request into a 500
            logger.warning("throttle store unavailable; request allowed", exc_info=True)
            return True

    def _count(self, key: str) -> bool:
        most, seconds = self.parse_rate(self.rate)
        if most is None or not seconds:
            return True
        window = float(seconds)
        now = self.timer()
        current = math.floor(now / window)
        elapsed = now - current * window
        this_key = cache.make_and_validate_key(f"{key}:{current}")
        last_key = cache.make_and_validate_key(f"{key}:{current - 1}")
        client = cache._cache.get_client(this_key, write=True)  # type: ignore[attr-defined]
        pipe = client.pipeline(transaction=False)
        pipe.incr(this_key)
        pipe.expire(this_key, math.ceil(2 * window))
        pipe.get(last_key)
        count, _, last = pipe.execute()
        last = int(last or 0)
        overlap = 1 - elapsed / window
        if last * overlap + count <= most:
            return True
        client.decr(this_key)
        count -= 1
        # Until the estimate leaves room for one more: the last window's weight decays over
        # what is left of this one; past it, this window's own count is the next "last".
        room = most - 1 - count
        wait = max(window * (1 - room / last) - elapsed, 0.0) if last and room >= 0 else window - elapsed
        self._wait = round(wait, 3)  # DRF rounds up: no whole second more for a float's last bit
        return False

    def wait(self) -> float:
        return getattr(self, "_wait", None) or 0.0
