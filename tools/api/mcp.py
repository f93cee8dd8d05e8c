"""``mcp-servers/``: an organization's MCP servers (API.md "To build"; issue #17).

An organization sees its own servers and the platform's servers shared with it (read-only,
without their address or command). Headers are write-only: only their names come back.
Only streamable HTTP and the legacy HTTP+SSE transport can be chosen here; a stdio server
(a command the workers would start) is the platform operators' alone, so ``transport:
stdio``, ``command``, ``args`` and ``env`` are refused with 400.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import AccessRules, request_actor
from config.api.errors import ApiError
from config.api.inputs import StrictSerializer, valid_input
from tools.api.views import READ
from tools.mcp import selectors, services
from tools.models import McpServer, McpTransport

WRITE = ("agents:write", "tools.change_tool")
ORGANIZATION_TRANSPORTS = [McpTransport.STREAMABLE_HTTP.value, McpTransport.SSE.value]


class DiscoveredToolSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The tool's name on the server.")
    tool_name = serializers.CharField(help_text="Its name here: mcp__<server>__<tool>.")
    title = serializers.CharField()
    description = serializers.CharField()
    input_schema = serializers.DictField()
    annotations = serializers.DictField()
    is_dangerous = serializers.BooleanField(help_text="From destructiveHint: calls wait for a person.")
    is_idempotent = serializers.BooleanField(help_text="From readOnlyHint/idempotentHint: re-run after a crash.")
    offered = serializers.BooleanField(help_text="False: agents cannot use it; warning says why.")
    warning = serializers.CharField()


class McpServerSerializer(serializers.ModelSerializer):
    organization_id = serializers.UUIDField(read_only=True, allow_null=True)
    is_platform = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    header_names = serializers.SerializerMethodField(help_text="Which headers are set (their values never).")
    tools = DiscoveredToolSerializer(many=True, read_only=True)

    class Meta:
        model = McpServer
        fields = [
            "id", "name", "description", "transport", "url", "header_names", "is_active", "timeout_seconds",
            "untrusted_output", "is_platform", "organization_id", "tools", "status", "last_error", "last_synced_at",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_is_platform(self, obj: McpServer) -> bool:
        return obj.organization_id is None

    def get_url(self, obj: McpServer) -> str:
        # A platform server's address (or command) is the operators' business.
        return obj.url if obj.organization_id is not None else ""

    def get_header_names(self, obj: McpServer) -> list[str]:
        return selectors.header_names(obj) if obj.organization_id is not None else []


class McpServerInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=64, help_text="[a-z0-9], single _ or - between; at most 32.")
    description = serializers.CharField(max_length=4000, required=False, allow_blank=True)
    url = serializers.CharField(max_length=2000, help_text="The server's MCP endpoint, http(s).")
    transport = serializers.ChoiceField(choices=ORGANIZATION_TRANSPORTS, required=False)
    headers = serializers.DictField(
        child=serializers.CharField(max_length=8000, allow_blank=True),
        required=False,
        write_only=True,
        help_text='Sent with every request, e.g. {"Authorization": "Bearer …"}; kept encrypted, never returned.',
    )
    is_active = serializers.BooleanField(required=False)
    timeout_seconds = serializers.IntegerField(min_value=1, max_value=300, required=False)
    untrusted_output = serializers.BooleanField(
        required=False, help_text="Its tools' answers carry outside content (default true)."
    )


class McpServerUpdateSerializer(McpServerInputSerializer):
    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields.pop("name")  # agents allow its tools by name (mcp__<name>__*): it does not change
        for field in fields.values():
            field.required = False
        return fields


class McpServerViewSet(viewsets.GenericViewSet):
    permission_classes = [AccessRules]
    access_rules = {
        "list": READ,
        "retrieve": READ,
        "create": WRITE,
        "partial_update": WRITE,
        "destroy": WRITE,
        "sync": WRITE,
    }
    serializer_class = McpServerSerializer
    queryset = McpServer.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.mcp_server_list(actor=request_actor(self.request))

    def get_object(self) -> McpServer:
        return selectors.mcp_server_get(actor=request_actor(self.request), server_id=self.kwargs["pk"])

    def _own(self) -> McpServer:
        server = self.get_object()
        if server.organization_id is None:
            raise ApiError(code="InsufficientPermissions", message="Platform MCP servers are the operators' to change.")
        return server

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(McpServerSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(McpServerSerializer(self.get_object()).data)

    @extend_schema(request=McpServerInputSerializer, responses={201: McpServerSerializer})
    def create(self, request: Request) -> Response:
        server = services.mcp_server_create(
            actor=request_actor(request), data=valid_input(McpServerInputSerializer, request)
        )
        return Response(McpServerSerializer(server).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=McpServerUpdateSerializer, responses=McpServerSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        server = self._own()
        data = valid_input(McpServerUpdateSerializer, request, partial=True)
        return Response(
            McpServerSerializer(services.mcp_server_update(actor=request_actor(request), server=server, data=data)).data
        )

    def destroy(self, request: Request, pk: str) -> Response:
        services.mcp_server_delete(actor=request_actor(request), server=self._own())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=McpServerSerializer)
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk: str | None = None) -> Response:
        """Connect, list the tools (every page) and answer with the server as it is now:
        ``status`` says whether the sync worked, ``last_error`` why not."""
        return Response(McpServerSerializer(services.mcp_server_sync(server=self._own())).data)
