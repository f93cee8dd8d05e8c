from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.access import AccessRules, request_actor
from accounts.api.serializers import (
    ActivityInputSerializer,
    ActivityLogSerializer,
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
)
from accounts.models import ActivityLog, ApiToken
from config.api.filters import UtcIsoDateTimeFilter


class ApiTokenViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """The caller's own API tokens: list, create (value shown once), revoke."""

    serializer_class = ApiTokenSerializer
    permission_classes = [AccessRules]
    # Any member manages their own tokens; no scope is needed beyond holding a valid token,
    # but a token can only mint tokens with scopes it holds (see api_token_create).
    access_rules = {"list": (None, None), "retrieve": (None, None), "create": (None, None), "destroy": (None, None)}
    queryset = ApiToken.objects.none()

    def get_queryset(self):
        return selectors.api_token_list(actor=request_actor(self.request))

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        actor = request_actor(request)
        payload = ApiTokenCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        token, raw = services.api_token_create(
            user=actor.user, organization=actor.organization, actor=actor, **payload.validated_data
        )
        data = ApiTokenSerializer(token).data | {"token": raw}
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.api_token_revoke(token=self.get_object(), actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ActivityFilter(django_filters.FilterSet):
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ActivityLog
        fields = ["action", "agent_id", "status", "target_type"]


class ActivityLogViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """The organization's activity log: members see their own rows, admins all of them;
    integrators add their own agents' activity (``external.<action>``)."""

    serializer_class = ActivityLogSerializer
    permission_classes = [AccessRules]
    access_rules = {
        "list": (None, "billing.view_activitylog"),
        "retrieve": (None, "billing.view_activitylog"),
        "create": ("agents:execute", "agents.execute_agent"),
    }
    filterset_class = ActivityFilter
    queryset = ActivityLog.objects.none()

    def get_queryset(self):
        return selectors.activity_list(actor=request_actor(self.request))

    @extend_schema(request=ActivityInputSerializer, responses={201: ActivityLogSerializer})
    def create(self, request: Request) -> Response:
        payload = ActivityInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        row = services.activity_log_external(actor=request_actor(request), data=payload.validated_data)
        return Response(ActivityLogSerializer(row).data, status=status.HTTP_201_CREATED)
