"""``webhooks/`` (endpoints, their deliveries, secret rotation), ``event-log/`` and ``event-types/``."""

from __future__ import annotations

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccessRules, request_actor
from agents.triggers.patterns import EVENT_TYPES
from config.api.errors import InvalidInput
from config.api.filters import FromToFilterSet, UtcIsoDateTimeFilter
from config.api.inputs import json_object_body
from executions.event_catalogue import event_type_list
from executions.models import DeliveryStatus, PlatformEvent, WebhookDelivery, WebhookEndpoint
from executions.triggers import selectors
from executions.webhooks.services import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)

MANAGE = ("admin", "billing.manage_webhooks")
UUID_PATH = "[0-9a-fA-F-]{36}"


class WebhookEndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = [
            "id", "url", "description", "events", "is_active", "secret_last4", "last_success_at",
            "last_failure_at", "consecutive_failures", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="Shown once: store it to check signatures.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "event_id", "event_type", "status", "attempts", "next_attempt_at", "last_attempt_at",
            "response_status", "response_body", "error", "duration_ms", "history", "created_at", "delivered_at",
        ]  # fmt: skip
        read_only_fields = fields


class DeliveryFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DeliveryStatus.choices)

    class Meta:
        model = WebhookDelivery
        fields = ["status", "event_type"]


class WebhookEndpointViewSet(viewsets.GenericViewSet):
    """The organization's endpoints for platform events. The secret signs every delivery
    (``X-Agentry-Signature: sha256=HMAC(secret, "<X-Agentry-Timestamp>." + body)``) and is
    shown only when the endpoint is created or its secret rotated."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": MANAGE,
        "retrieve": MANAGE,
        "create": MANAGE,
        "partial_update": MANAGE,
        "destroy": MANAGE,
        "deliveries": MANAGE,
        "rotate_secret": MANAGE,
    }
    serializer_class = WebhookEndpointSerializer
    queryset = WebhookEndpoint.objects.none()
    lookup_value_regex = UUID_PATH

    def get_queryset(self):
        return selectors.webhook_endpoint_list(actor=request_actor(self.request))

    def _endpoint(self, pk: str) -> WebhookEndpoint:
        return selectors.webhook_endpoint_get(actor=request_actor(self.request), endpoint_id=pk)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookEndpointSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(WebhookEndpointSerializer(self._endpoint(pk)).data)

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: WebhookEndpointCreatedSerializer})
    def create(self, request: Request) -> Response:
        endpoint, secret = webhook_endpoint_create(actor=request_actor(request), data=json_object_body(request))
        endpoint.secret = secret
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=WebhookEndpointSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        endpoint = webhook_endpoint_update(
            actor=request_actor(request), endpoint=self._endpoint(pk), data=json_object_body(request)
        )
        return Response(WebhookEndpointSerializer(endpoint).data)

    def destroy(self, request: Request, pk: str) -> Response:
        webhook_endpoint_delete(actor=request_actor(request), endpoint=self._endpoint(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str) -> Response:
        queryset = DeliveryFilter(
            request.query_params, queryset=selectors.webhook_delivery_list(endpoint=self._endpoint(pk))
        )
        if not queryset.is_valid():
            raise InvalidInput(validation_errors={k: [str(e) for e in v] for k, v in queryset.errors.items()})
        page = self.paginate_queryset(queryset.qs)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(request=None, responses={201: WebhookEndpointCreatedSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        endpoint, secret = webhook_endpoint_rotate_secret(actor=request_actor(request), endpoint=self._endpoint(pk))
        endpoint.secret = secret
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class PlatformEventSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="event_type", read_only=True)

    class Meta:
        model = PlatformEvent
        fields = ["id", "type", "payload", "agent_id", "execution_id", "created_at"]
        read_only_fields = fields


class PlatformEventFilter(FromToFilterSet):
    type = django_filters.MultipleChoiceFilter(field_name="event_type", choices=[(t, t) for t in EVENT_TYPES])
    agent = django_filters.UUIDFilter(field_name="agent_id")
    execution = django_filters.UUIDFilter(field_name="execution_id")
    created_from = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte", label="from")
    created_to = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt", label="to")

    class Meta:
        model = PlatformEvent
        fields = ["type", "agent", "execution"]


class EventLogViewSet(viewsets.ReadOnlyModelViewSet):
    """The platform events of the organization (``ai.agent.*``, ``ai.execution.*``,
    ``ai.approval.*``), newest first; the same events webhook endpoints receive."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": ("agents:read", "executions.view_execution"),
        "retrieve": ("agents:read", "executions.view_execution"),
    }
    serializer_class = PlatformEventSerializer
    filterset_class = PlatformEventFilter
    queryset = PlatformEvent.objects.none()
    lookup_value_regex = UUID_PATH

    def get_queryset(self):
        return selectors.platform_event_list(actor=request_actor(self.request))

    def get_object(self) -> PlatformEvent:
        return selectors.platform_event_get(actor=request_actor(self.request), event_id=self.kwargs["pk"])


class EventTypeView(APIView):
    """Every platform event: id, category, name, description, trigger label and the JSON
    Schema of its payload (the reference's EVENT_REGISTRY)."""

    permission_classes = [AccessRules]
    access_rules = {"get": ("agents:read", "executions.view_execution")}

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        types = event_type_list()
        return Response({"results": types, "total": len(types)})
