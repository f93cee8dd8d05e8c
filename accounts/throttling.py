from __future__ import annotations

import logging

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken

logger = logging.getLogger(__name__)


class TokenRateThrottle(SimpleRateThrottle):
    """Per token (else per user, else per client address), in the shared Redis cache.

    A convenience against runaway clients, not a security measure: quotas are enforced in
    the database. When Redis is unreachable the throttle lets requests through and logs it.
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
        try:
            return super().allow_request(request, view)
        except Exception:  # redis down: do not turn every request into a 500
            logger.warning("throttle store unavailable; request allowed", exc_info=True)
            return True
