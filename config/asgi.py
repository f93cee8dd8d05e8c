import os

import django

from config.db import WEB_DB_POOL_MAX_SIZE

# The web process's database connections, before the settings read them. Under ASGI each
# request runs in a thread of its own (asgiref's thread-sensitive executor is per request),
# so a persistent connection per thread is one left open per request: hundreds of clients
# ran PostgreSQL out of connections. The web process takes them from psycopg's pool
# instead, at most WEB_DB_POOL_MAX_SIZE at once, and a request waits for a free one. An
# explicit DB_POOL_MAX_SIZE wins; 0 (no pool) means a connection per request, closed at its
# end, unless DB_CONN_MAX_AGE is set too.
os.environ.setdefault("DB_POOL_MAX_SIZE", str(WEB_DB_POOL_MAX_SIZE))
os.environ.setdefault("DB_CONN_MAX_AGE", "0")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

django.setup(set_prefix=False)  # what get_asgi_application() does, with the handler below

from config.asgi_handler import SyncChainASGIHandler  # noqa: E402

# The middleware chain and the view in one thread hop, not a dozen (config/asgi_handler.py).
application = SyncChainASGIHandler()

# /mcp/ (issue #17): the MCP SDK's streamable HTTP transport, beside Django. It is imported
# after Django is set up (it uses the models); everything else is Django's.
from config.telemetry import asgi_traced  # noqa: E402
from doors.mcp.asgi import McpDoor  # noqa: E402

_django = application
_mcp = asgi_traced(McpDoor())  # a span per request when tracing is on, as Django's requests get


async def application(scope, receive, send):  # type: ignore[no-redef]
    path = scope.get("path", "")
    if scope["type"] == "lifespan" or path == "/mcp" or path.startswith("/mcp/"):
        await _mcp(scope, receive, send)
    else:
        await _django(scope, receive, send)
