"""The web process's connection pool, and connections held across a wait going back to it."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

# The web process's pool (config/asgi.py) unless DB_POOL_MAX_SIZE says otherwise.
WEB_DB_POOL_MAX_SIZE = 20


def connection_release() -> None:
    """Hand this thread's connection back to psycopg's pool before a long wait.

    A web request normally gives its connection back when it ends; one that waits (an
    execute with ``wait``, an event stream open for an hour) would otherwise hold one of
    the web process's ``DB_POOL_MAX_SIZE`` connections for all that time, and a handful of
    them starve every other request. The next query takes a pooled connection again
    (microseconds, no new session). Without the pool a close would mean a new session per
    query, so the connection is kept; inside a transaction it must be kept.
    """
    if settings.DB_POOL_MAX_SIZE <= 0 or connection.in_atomic_block:
        return
    connection.close()
