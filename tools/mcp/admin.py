"""Admin pages for MCP servers (registered by ``tools/admin.py``).

Organization admins add and change their organizations' network servers exactly as the API
lets them (``mcp-servers/``, through its services): no stdio, no command, no sharing. Platform
superusers also define platform servers — stdio commands included — and choose which
organizations see them. Header values and a stdio server's environment are write-only: the
page shows their names, never their values. "Sync now" lists a server's tools at once.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest
from django.utils.html import format_html_join

from accounts.access import Actor
from accounts.admin_scoping import OrganizationScopedAdmin, api_validated
from config.api.errors import ApiError
from config.forms import BoundedJSONField
from tools import tasks
from tools.api.mcp import McpServerInputSerializer, McpServerUpdateSerializer
from tools.mcp import services
from tools.mcp.selectors import header_names
from tools.models import McpServer, McpTransport

PERMISSION = "tools.change_tool"  # the API's rule for writing mcp-servers/


class McpServerForm(forms.ModelForm):
    """The platform's form: every field, secrets write-only."""

    new_headers = BoundedJSONField(
        required=False,
        help_text='Replace the headers sent to the server: {"Authorization": "Bearer …"}. Empty keeps them; {} clears.',
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    new_env = BoundedJSONField(
        required=False,
        help_text='stdio servers: replace the process\'s environment ({"NAME": "value"}). Empty keeps it; {} clears.',
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    class Meta:
        model = McpServer
        fields = [
            "organization", "name", "description", "transport", "url", "command", "args", "is_active",
            "timeout_seconds", "untrusted_output", "shared_with_all", "shared_with",
        ]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        transport = data.get("transport")
        if transport == McpTransport.STDIO:
            if data.get("organization") is not None:
                self.add_error("transport", "Only platform servers (no organization) may run a local command.")
            if not data.get("command"):
                self.add_error("command", "A stdio server needs the command to start.")
            args = data.get("args") or []
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                self.add_error("args", "A list of strings.")
        elif transport:
            if data.get("command") or data.get("args"):
                self.add_error("command", "Only stdio servers run a command.")
            if not data.get("url"):
                self.add_error("url", "A network server needs its URL.")
            else:
                try:
                    services.check_server_url(data["url"])
                except ApiError as error:
                    self.add_error(
                        "url", "; ".join(error.details.get("validation_errors", {}).get("url", [error.message]))
                    )
        if data.get("organization") is not None and (data.get("shared_with_all") or data.get("shared_with")):
            self.add_error("shared_with", "Only platform servers are shared; an organization's server is its own.")
        if data.get("new_headers") is not None:
            try:
                services.check_headers(data["new_headers"])
            except ApiError as error:
                self.add_error("new_headers", "; ".join(error.details.get("validation_errors", {}).get("headers", [])))
        return data

    def save(self, commit: bool = True) -> McpServer:
        server = super().save(commit=False)
        for field, target in (("new_headers", "headers"), ("new_env", "env")):
            value = self.cleaned_data.get(field)
            if value is not None:
                setattr(server, target, json.dumps(value) if value else "")
        if commit:
            server.save()
            self.save_m2m()
        return server


class OrganizationMcpServerForm(McpServerForm):
    """An organization admin's form: what the API takes, nothing of the platform's."""

    transport = forms.ChoiceField(
        choices=[(t.value, t.label) for t in (McpTransport.STREAMABLE_HTTP, McpTransport.SSE)],
        initial=McpTransport.STREAMABLE_HTTP.value,
    )
    new_env = None  # type: ignore[assignment]  # a process's environment: stdio, the platform's only

    class Meta(McpServerForm.Meta):
        fields = ["organization", "name", "description", "transport", "url", "is_active", "timeout_seconds",
                  "untrusted_output"]  # fmt: skip


@admin.register(McpServer)
class McpServerAdmin(OrganizationScopedAdmin):
    form = McpServerForm
    api_permissions = {"view": "tools.view_tool", "add": PERMISSION, "change": PERMISSION, "delete": PERMISSION}
    list_display = ["name", "organization", "transport", "status", "last_synced_at", "is_active"]
    list_filter = ["transport", "status", "is_active"]
    search_fields = ["name", "description", "url"]
    list_select_related = ["organization"]
    readonly_fields = [
        "header_names_shown", "env_names_shown", "status", "last_error", "last_synced_at", "sync_requested_at",
        "discovered_tools",
    ]  # fmt: skip
    actions = ["sync_now"]

    @admin.display(description="headers set")
    def header_names_shown(self, obj: McpServer) -> str:
        return ", ".join(header_names(obj)) or "-"

    @admin.display(description="environment set")
    def env_names_shown(self, obj: McpServer) -> str:
        return ", ".join(sorted(json.loads(obj.env))) if obj.env else "-"

    @admin.display(description="tools")
    def discovered_tools(self, obj: McpServer) -> str:
        if not obj.tools:
            return "-"
        return format_html_join(
            "\n",
            "<div><code>{}</code> {} {}</div>",
            (
                (t.get("tool_name", ""), "offered" if t.get("offered") else "not offered", t.get("warning", ""))
                for t in obj.tools
            ),
        )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if not self._is_platform(request):
            kwargs["form"] = OrganizationMcpServerForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if not self._is_platform(request):
            fields.remove("env_names_shown")
            if obj is not None:
                fields = ["organization", "name", *fields]  # agents allow its tools by name
        return fields

    def save_model(self, request: HttpRequest, obj: McpServer, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if self._is_platform(request) and obj.is_active:
            # The platform's own save: list its tools right after, as the API's create does.
            server_id = str(obj.pk)
            transaction.on_commit(lambda: tasks.mcp_server_sync.delay(server_id))

    def service_save(self, request: HttpRequest, actor: Actor | None, form: Any, change: bool) -> McpServer:
        assert actor is not None  # superusers save the row themselves
        names = ["description", "transport", "url", "is_active", "timeout_seconds", "untrusted_output"]
        data = {
            n: form.cleaned_data[n] for n in names if n in form.cleaned_data and (not change or n in form.changed_data)
        }
        if form.cleaned_data.get("new_headers") is not None:
            data["headers"] = form.cleaned_data["new_headers"]
        if change:
            valid = api_validated(McpServerUpdateSerializer, data, partial=True)
            return services.mcp_server_update(
                actor=actor, server=McpServer.objects.get(pk=form.instance.pk), data=valid
            )
        data["name"] = form.cleaned_data["name"]
        return services.mcp_server_create(actor=actor, data=api_validated(McpServerInputSerializer, data))

    def service_delete(self, request: HttpRequest, actor: Actor | None, obj: McpServer) -> None:
        assert actor is not None
        services.mcp_server_delete(actor=actor, server=obj)

    @admin.action(description="Sync now: list the servers' tools")
    def sync_now(self, request: HttpRequest, queryset: Any) -> None:
        for server in queryset:
            if not self.has_change_permission(request, server):
                self.message_user(request, f"{server}: your role may not sync it.", messages.ERROR)
                continue
            synced = services.mcp_server_sync(server=server)
            if synced.status == "ok":
                offered = sum(1 for t in synced.tools if t.get("offered"))
                self.message_user(request, f"{server}: {offered} tools offered. {synced.last_error}".strip())
            else:
                self.message_user(request, f"{server}: {synced.last_error}", messages.ERROR)
