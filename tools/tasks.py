"""Entry points for tools on the ``default`` queue: take ids, call a service, return quietly."""

from __future__ import annotations

from celery import shared_task

from tools.models import McpServer


# Every minute (config/celery.py): MCP servers that announced new tools, new ones, and every
# server once per AGENTRY_MCP_SYNC_SECONDS; the settings' platform stdio servers first.
@shared_task(name="tools.mcp_sync_due", ignore_result=True)
def mcp_sync_due() -> str:
    from tools.mcp.services import mcp_sync_due as sync_due  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    return sync_due()


@shared_task(name="tools.mcp_server_sync", ignore_result=True)
def mcp_server_sync(server_id: str) -> None:
    from tools.mcp.services import mcp_server_sync as sync  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    server = McpServer.objects.filter(pk=server_id).first()
    if server is not None:
        sync(server=server)
