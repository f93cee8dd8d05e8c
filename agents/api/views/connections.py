"""``provider-connections/``: the organization's provider endpoints and keys (keys write-only)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import AccessRules, request_actor
from agents import selectors
from agents.models import ProviderConnection
from agents.services.connections import (
    provider_connection_create,
    provider_connection_delete,
    provider_connection_update,
)
from config.api.inputs import json_object_body
from config.api.pagination import LimitOffsetTotalPagination

MANAGE = ("admin", "billing.manage_provider_connections")


class ProviderConnectionSerializer(serializers.ModelSerializer):
    is_platform = serializers.SerializerMethodField()
    has_key = serializers.SerializerMethodField()

    class Meta:
        model = ProviderConnection
        fields = [
            "id", "provider", "name", "base_url", "key_last4", "has_key", "default_model", "available_models",
            "is_default", "is_active", "requests_per_minute", "tokens_per_minute", "openai_organization",
            "is_platform", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_is_platform(self, obj: ProviderConnection) -> bool:
        return obj.organization_id is None

    def get_has_key(self, obj: ProviderConnection) -> bool:
        return bool(obj.api_key_encrypted)


class ProviderConnectionViewSet(viewsets.ViewSet):
    """List (the organization's and the platform's), create, change, delete. The key is
    accepted on write and never returned: only its last four characters. A connection with a
    ``base_url`` of its own must carry its own ``api_key`` (the platform's keys only go to the
    providers' own endpoints), and the URL must be a public address unless the operators allow
    it (400 otherwise)."""

    permission_classes = [AccessRules]
    queryset = ProviderConnection.objects.none()  # for the schema: ids are UUIDs
    access_rules = {
        "list": ("agents:read", "billing.manage_provider_connections"),
        "retrieve": ("agents:read", "billing.manage_provider_connections"),
        "create": MANAGE,
        "partial_update": MANAGE,
        "destroy": MANAGE,
    }

    @extend_schema(responses=ProviderConnectionSerializer(many=True))
    def list(self, request: Request) -> Response:
        paginator = LimitOffsetTotalPagination()
        page = paginator.paginate_queryset(selectors.provider_connection_list(actor=request_actor(request)), request)
        return paginator.get_paginated_response(ProviderConnectionSerializer(page, many=True).data)

    @extend_schema(responses=ProviderConnectionSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        connection = selectors.provider_connection_get(actor=request_actor(request), connection_id=pk)
        return Response(ProviderConnectionSerializer(connection).data)

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: ProviderConnectionSerializer})
    def create(self, request: Request) -> Response:
        connection = provider_connection_create(actor=request_actor(request), data=json_object_body(request))
        return Response(ProviderConnectionSerializer(connection).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=ProviderConnectionSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        actor = request_actor(request)
        connection = selectors.provider_connection_get(actor=actor, connection_id=pk, writable=True)
        connection = provider_connection_update(actor=actor, connection=connection, data=json_object_body(request))
        return Response(ProviderConnectionSerializer(connection).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        actor = request_actor(request)
        connection = selectors.provider_connection_get(actor=actor, connection_id=pk, writable=True)
        provider_connection_delete(actor=actor, connection=connection)
        return Response(status=status.HTTP_204_NO_CONTENT)
