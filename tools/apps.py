from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_save


class ToolsConfig(AppConfig):
    name = "tools"
    verbose_name = "Tools"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from agents.tooling import ToolsCatalog, tools_catalog_set  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from tools.mcp.client import mcp_pool  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from tools.mcp.services import mcp_sync_requested  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from tools.models import (  # noqa: PLC0415  (ready(): app modules load after the app registry)
            AgentCapabilityGrant,
            Capability,
            McpServer,
            ModuleEndpoint,
            Tool,
        )
        from tools.selectors import agent_capabilities, agent_tool_gaps, tool_names_available  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from tools.view_cache import registry_changed  # noqa: PLC0415  (ready(): app modules load after the app registry)

        # The agents app (below this one) asks about tools through what is registered here:
        # pattern warnings, tools its runs would not be offered, capability tags.
        tools_catalog_set(
            ToolsCatalog(
                tool_names=tool_names_available,
                tool_gaps=agent_tool_gaps,
                agent_capabilities=agent_capabilities,
                capability_names=frozenset(Capability.values),
            )
        )
        # A server's notifications/tools/list_changed marks it for the next sync (beat job).
        mcp_pool().on_tools_changed = mcp_sync_requested

        # Whatever a run's tool view holds changed: cached views are stale (tools.view_cache).
        for model in (Tool, McpServer, AgentCapabilityGrant, ModuleEndpoint):
            post_save.connect(
                registry_changed, sender=model, dispatch_uid=f"agentry_tool_registry_{model.__name__}_save"
            )
            post_delete.connect(
                registry_changed, sender=model, dispatch_uid=f"agentry_tool_registry_{model.__name__}_delete"
            )
        m2m_changed.connect(
            registry_changed, sender=McpServer.shared_with.through, dispatch_uid="agentry_tool_registry_mcp_shared"
        )
