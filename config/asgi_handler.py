"""Django's ASGI handler with the middleware chain and the view run in one thread hop.

Under Django's own handler a sync view sits below an async chain: every ``MiddlewareMixin``
in async mode runs its ``process_request``/``process_response`` through ``sync_to_async``,
and each sync-only middleware adapts the chain back and forth - a dozen thread hops per
request, each a context copy, an executor hand-off and a GIL round trip, for a chain whose
work is all synchronous (sessions, CSRF, the ORM). Here the chain is built in sync mode (as
under WSGI) and the whole of it, view included, runs in one ``sync_to_async`` call, in the
request's thread-sensitive context (the same thread as the request_started/finished
signals, so the request's database connection is opened and released in one thread).
Reading the body, streaming the response and disconnect handling stay Django's.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: Any) -> Any:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
