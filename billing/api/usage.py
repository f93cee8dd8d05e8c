"""``usage/`` (JSON or CSV), ``usage/quota/``, ``alerts/``."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccessRules, request_actor
from billing import selectors
from billing.models import Alert
from config.api.errors import InvalidInput
from config.api.negotiation import ErrorsAsJson

USAGE = ("usage:read", "billing.view_usage")


class UsageQuery(serializers.Serializer):
    # "from" is a keyword in Python; the query parameters are mapped below.
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)
    group_by = serializers.ChoiceField(choices=selectors.GROUPS, default="day")
    format = serializers.ChoiceField(choices=["json", "csv"], default="json")

    def validate(self, attrs: dict) -> dict:
        today = timezone.now().date()
        end = attrs.get("end") or today
        start = attrs.get("start") or (end - timedelta(days=29))
        if start > end:
            raise serializers.ValidationError({"from": ["Must not be after 'to'."]})
        if (end - start).days > selectors.MAX_RANGE_DAYS:
            raise serializers.ValidationError({"to": [f"The range may span at most {selectors.MAX_RANGE_DAYS} days."]})
        attrs["start"], attrs["end"] = start, end
        return attrs


class CSVRenderer(BaseRenderer):
    """Lets ``?format=csv`` (or ``Accept: text/csv``) reach the view, which writes the CSV."""

    media_type = "text/csv"
    format = "csv"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class UsageView(ErrorsAsJson, APIView):
    """Runs, LLM calls, tool calls, approval requests, tokens in/out and cost, grouped by day, agent,
    provider, model or user (approvals: null per user, a request has no user of its own);
    ``priced_by_default_calls`` counts calls of models without a price (charged the default)."""

    permission_classes = [AccessRules]
    renderer_classes = [JSONRenderer, CSVRenderer]
    access_rules = {"get": USAGE}

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE),
            OpenApiParameter("to", OpenApiTypes.DATE),
            OpenApiParameter("group_by", str, enum=list(selectors.GROUPS)),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response | HttpResponse:
        params = request.query_params
        query = UsageQuery(
            data={
                **({"start": params["from"]} if "from" in params else {}),
                **({"end": params["to"]} if "to" in params else {}),
                **({"group_by": params["group_by"]} if "group_by" in params else {}),
                **({"format": params["format"]} if "format" in params else {}),
            }
        )
        if not query.is_valid():
            errors = {{"start": "from", "end": "to"}.get(k, k): v for k, v in query.errors.items()}
            raise InvalidInput(validation_errors={k: [str(m) for m in v] for k, v in errors.items()})
        data = query.validated_data
        rows = selectors.usage_summary(
            actor=request_actor(request), start=data["start"], end=data["end"], group_by=data["group_by"]
        )
        wants_csv = data["format"] == "csv" or getattr(request.accepted_renderer, "format", "") == "csv"
        if wants_csv:
            return _csv(rows, data["group_by"], data["start"], data["end"])
        return Response({"from": data["start"], "to": data["end"], "group_by": data["group_by"], "results": rows})


def _csv(rows: list[dict], group_by: str, start: date, end: date) -> HttpResponse:
    buffer = io.StringIO()
    columns = [
        "key", "runs", "llm_calls", "tool_calls", "approvals", "tokens_input", "tokens_output", "tokens_total", "cost",
        "priced_by_default_calls", "sandbox_calls",
    ]  # fmt: skip
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writerow({c: (group_by if c == "key" else c) for c in columns})
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="usage-{group_by}-{start}-{end}.csv"'
    return response


class QuotaView(APIView):
    permission_classes = [AccessRules]
    access_rules = {"get": USAGE}

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(selectors.quota_summary(actor=request_actor(request)))


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = ["id", "kind", "threshold", "key", "message", "details", "created_at", "read_at"]
        read_only_fields = fields


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """In-app alerts of the organization (quota and budget thresholds, failure spikes, stuck runs)."""

    serializer_class = AlertSerializer
    permission_classes = [AccessRules]
    access_rules = {"list": USAGE, "retrieve": USAGE, "read": USAGE}
    queryset = Alert.objects.none()

    def get_queryset(self):
        return selectors.alert_list(actor=request_actor(self.request))

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        alert = self.get_object()
        if alert.read_at is None:
            alert.read_at = timezone.now()
            alert.save(update_fields=["read_at"])
        return Response(AlertSerializer(alert).data)
