"""``chains/``: definitions, validated as a whole. Running them (``chains/{id}/execute/``,
``chain-executions/``) is ``executions.api.chains``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import AccessRules, request_actor
from agents import selectors
from agents.chain_suggestions import chain_suggestions
from agents.models import AgentChain
from agents.services.chains import chain_create, chain_delete, chain_update
from agents.services.dry_run import chain_validate
from config.api.inputs import json_object_body

UUID_PATH = "[0-9a-fA-F-]{36}"


class ChainSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentChain
        fields = [
            "id", "name", "description", "status", "steps", "error_handling", "retry_policy", "timeout_seconds",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class ChainViewSet(viewsets.GenericViewSet):
    """Agent chains: ordered steps (agent, input/output mapping, condition, timeout), error
    handling (stop, continue, fallback) and a retry policy; refused as a whole when an agent
    cannot run, a mapping names an output not produced before its step, or fallbacks loop."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": ("agents:read", "agents.view_agent"),
        "retrieve": ("agents:read", "agents.view_agent"),
        "create": ("agents:write", "agents.change_agent"),
        "validate": ("agents:write", "agents.change_agent"),
        "partial_update": ("agents:write", "agents.change_agent"),
        "destroy": ("agents:write", "agents.change_agent"),
        "suggestions": ("agents:read", "agents.view_agent"),
    }
    serializer_class = ChainSerializer
    queryset = AgentChain.objects.none()
    lookup_value_regex = UUID_PATH

    def get_queryset(self):
        return selectors.chain_list(actor=request_actor(self.request))

    def _chain(self, pk: str) -> AgentChain:
        return selectors.chain_get(actor=request_actor(self.request), chain_id=pk)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ChainSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(ChainSerializer(self._chain(pk)).data)

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: ChainSerializer})
    def create(self, request: Request) -> Response:
        chain = chain_create(actor=request_actor(request), data=json_object_body(request))
        return Response(ChainSerializer(chain).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def suggestions(self, request: Request, pk: str) -> Response:
        """From the chain's history and definition: slow steps, failing steps, unused outputs."""
        return Response(chain_suggestions(chain=self._chain(pk)))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"])
    def validate(self, request: Request) -> Response:
        """The errors create would answer for this definition; nothing is written."""
        return Response(chain_validate(actor=request_actor(request), data=json_object_body(request)))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=ChainSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        chain = chain_update(actor=request_actor(request), chain=self._chain(pk), data=json_object_body(request))
        return Response(ChainSerializer(chain).data)

    def destroy(self, request: Request, pk: str) -> Response:
        chain_delete(actor=request_actor(request), chain=self._chain(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
