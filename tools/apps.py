from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "tools"
    verbose_name = "Tools"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tools.mcp.client import mcp_pool
        from tools.mcp.services import mcp_sync_requested

        # A server's notifications/tools/list_changed marks it for the next sync (beat job).
        mcp_pool().on_tools_changed = mcp_sync_requested
