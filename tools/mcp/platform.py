"""Platform MCP servers from the ``AGENTRY_MCP_STDIO_SERVERS`` setting (operators only).

Each entry is ``{"name", "command", "args"?, "env"?, "shared_with"?, "description"?}``;
``shared_with`` is ``"*"`` (every organization) or a list of organization slugs. The rows are
written by ``manage.py sync_platform`` and by the MCP beat job (``from_setting``); a row the
setting no longer names is switched off, not deleted (its call log keeps pointing at it).
Platform servers made in the admin are left alone; a setting entry with one's name is
skipped and said so. Tenants can never create a stdio server: the organization API refuses
the transport, and only superusers see these fields in the admin.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from accounts.models import Organization
from tools.models import McpServer, McpTransport
from tools.view_cache import registry_changed

_NAME = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")
SETTING_MARK = "AGENTRY_MCP_STDIO_SERVERS"


def configured_servers() -> list[dict[str, Any]]:
    """The setting, checked: a bad entry stops with the variable's name and what is wrong."""
    entries = getattr(settings, "AGENTRY_MCP_STDIO_SERVERS", None) or []
    if not isinstance(entries, list):
        raise ImproperlyConfigured(f"{SETTING_MARK} must be a JSON list of servers.")
    checked = []
    for index, entry in enumerate(entries):
        where = f"{SETTING_MARK}[{index}]"
        if not isinstance(entry, dict):
            raise ImproperlyConfigured(f"{where} must be an object.")
        name, command = str(entry.get("name", "")), entry.get("command")
        if len(name) > 32 or not _NAME.match(name):
            raise ImproperlyConfigured(f"{where}.name must be lowercase letters and digits, single _ or - between.")
        if not isinstance(command, str) or not command:
            raise ImproperlyConfigured(f"{where}.command must be the program to start.")
        args, env = entry.get("args", []), entry.get("env", {})
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ImproperlyConfigured(f"{where}.args must be a list of strings.")
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise ImproperlyConfigured(f"{where}.env must be an object of strings.")
        shared = entry.get("shared_with", [])
        if shared != "*" and not (isinstance(shared, list) and all(isinstance(s, str) for s in shared)):
            raise ImproperlyConfigured(f'{where}.shared_with must be "*" or a list of organization slugs.')
        checked.append(
            {"name": name, "command": command, "args": args, "env": env, "shared_with": shared,
             "description": str(entry.get("description", ""))}
        )  # fmt: skip
    return checked


def mcp_platform_servers_sync() -> str:
    """Create or update the setting's stdio servers; switch off those it dropped."""
    entries = configured_servers()
    created = updated = 0
    skipped: list[str] = []
    with transaction.atomic():
        platform = {s.name: s for s in McpServer.objects.select_for_update().filter(organization__isnull=True)}
        existing = {name: s for name, s in platform.items() if s.from_setting}
        for entry in entries:
            if entry["name"] in platform and entry["name"] not in existing:
                skipped.append(entry["name"])  # an operator's server of the admin has that name
                continue
            values = {
                "transport": McpTransport.STDIO,
                "command": entry["command"],
                "args": entry["args"],
                "env": json.dumps(entry["env"]) if entry["env"] else "",
                "description": entry["description"] or f"{SETTING_MARK}: {entry['name']}",
                "shared_with_all": entry["shared_with"] == "*",
                "untrusted_output": False,  # the operators' own program
            }
            server = existing.pop(entry["name"], None)
            if server is None:
                server = McpServer.objects.create(organization=None, name=entry["name"], from_setting=True, **values)
                created += 1
            else:
                changed = [k for k, v in values.items() if getattr(server, k) != v]
                if changed or not server.is_active:
                    for key in changed:
                        setattr(server, key, values[key])
                    server.is_active = True
                    server.save(update_fields=[*changed, "is_active", "updated_at"])
                    updated += 1
            slugs = [] if entry["shared_with"] == "*" else entry["shared_with"]
            server.shared_with.set(Organization.objects.filter(slug__in=slugs))
        retired = 0
        for server in existing.values():
            if server.is_active:
                server.is_active = False
                server.save(update_fields=["is_active", "updated_at"])
                server.tool_rows.update(is_active=False)
                registry_changed()  # an UPDATE sends no signal (tools.view_cache)
                retired += 1
    note = f"; skipped (an admin-made platform server has the name): {', '.join(skipped)}" if skipped else ""
    return f"MCP platform servers: {created} created, {updated} updated, {retired} switched off{note}"
