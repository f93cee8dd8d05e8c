"""The tool handlers, by the key ``ToolDef.handler_key`` names.

The key is ``handler_config["handler"]`` when set, else the handler type (``module``,
``http``). Another app can add a handler with ``register_handler`` and a ``Tool`` row whose
``handler_config`` names it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tools.builtins import communication, data, remote, web, work
from tools.builtins.base import Invocation
from tools.mcp.handler import mcp_tool

Handler = Callable[[Invocation], Any]

HANDLERS: dict[str, Handler] = {
    "email_send": communication.email_send,
    "email_draft": communication.email_draft,
    "notify_user": communication.notify_user,
    "task_create": work.task_create,
    "wait": work.wait,
    # "knowledge_search" is the memory app's (memory/tool_handlers.py, registered in its ready()).
    "trigger_workflow": work.trigger_workflow,
    "data_query": data.data_query,
    "data_aggregate": data.data_aggregate,
    "data_export": data.data_export,
    "web_scrape": web.web_scrape,
    "web_search": remote.web_search,
    "module": remote.module_call,
    "http": remote.http_tool,
    "mcp": mcp_tool,
}


def register_handler(key: str, handler: Handler) -> None:
    HANDLERS[key] = handler


def handler_for(key: str) -> Handler | None:
    return HANDLERS.get(key)
