"""The steps of `manage.py sync_platform`, registered by the apps that own the data.

Each step is "dotted.path.to.function" returning a short summary string; apps add theirs
here as they gain built-in data (tools, model prices, agent templates).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.utils.module_loading import import_string

SYNC_STEPS: list[str] = [
    "billing.seeding.sync_plans",
    "billing.seeding.sync_model_prices",
    "tools.services.tools_sync",
    "tools.mcp.platform.mcp_platform_servers_sync",
]


def run_sync_steps() -> Iterator[tuple[str, str]]:
    for path in SYNC_STEPS:
        yield path, str(import_string(path)())
