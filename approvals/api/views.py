"""Approvals REST endpoints (API.md "Approvals") and the organization's risk rules."""

from __future__ import annotations

import uuid

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import AccessRules, request_actor, resolve_actor
from approvals import selectors, services
from approvals.api.serializers import (
    ApprovalSerializer,
    ApproveInputSerializer,
    DenyInputSerializer,
    RiskRuleSerializer,
)
from approvals.models import ApprovalRequest, ApprovalStatus, RiskLevel, RiskRule
from config.api.errors import ApiError, NotFound
from config.api.inputs import valid_input


class ApprovalAccessRules(AccessRules):
    """Like AccessRules, with a tuple of scopes meaning "any of them": a token made for an
    approvals bot (``approvals:resolve``) and one that reads agents (``agents:read``) both
    list requests."""

    def has_permission(self, request: Request, view) -> bool:
        actor = resolve_actor(request)
        rule = getattr(view, "access_rules", {}).get(getattr(view, "action", None) or "")
        if actor is not None and rule is not None and isinstance(rule[0], tuple):
            scopes, perm = rule
            if not any(actor.has_scope(s) for s in scopes):
                raise ApiError(
                    code="AgentAccessDenied",
                    message=f"The token needs one of the scopes {', '.join(scopes)}.",
                    details={"required_scope": list(scopes)},
                )
            view.access_rules = {**view.access_rules, view.action: ("", perm)}
        return super().has_permission(request, view)


READ = (("approvals:resolve", "agents:read"), "approvals.view_approvalrequest")
RESOLVE = ("approvals:resolve", "approvals.resolve_approvalrequest")


class ApprovalFilter(django_filters.FilterSet):
    status = django_filters.CharFilter(method="filter_status", help_text="pending (default), …, or all")
    agent = django_filters.UUIDFilter(field_name="agent_id")
    execution = django_filters.UUIDFilter(field_name="execution_id")
    risk_level = django_filters.MultipleChoiceFilter(choices=RiskLevel.choices)

    class Meta:
        model = ApprovalRequest
        fields = ["status", "agent", "execution", "risk_level"]

    def filter_status(self, queryset, name, value):
        if value == "all":
            return queryset
        values = [v for v in value.split(",") if v]
        if not set(values) <= set(ApprovalStatus.values):
            raise ApiError(
                code="InvalidInput",
                details={"validation_errors": {"status": [f"One of {', '.join(ApprovalStatus.values)} or all."]}},
            )
        return queryset.filter(status__in=values)

    @property
    def qs(self):
        queryset = super().qs
        if not self.data.get("status"):
            queryset = queryset.filter(status=ApprovalStatus.PENDING)  # API.md: pending by default
        return queryset


class ApprovalViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [ApprovalAccessRules]
    access_rules = {"list": READ, "retrieve": READ, "approve": RESOLVE, "deny": RESOLVE}
    serializer_class = ApprovalSerializer
    filterset_class = ApprovalFilter
    queryset = ApprovalRequest.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.approval_list(actor=request_actor(self.request)).order_by("-created_at")

    def get_object(self) -> ApprovalRequest:
        return selectors.approval_get(actor=request_actor(self.request), approval_id=self.kwargs["pk"])

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description="pending (default), approved, denied, expired, cancelled, all")
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ApproveInputSerializer, responses=ApprovalSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        data = valid_input(ApproveInputSerializer, request)
        approval = services.approval_resolve(
            approval=self.get_object(),
            actor=request_actor(request),
            approved=True,
            note=data.get("note", ""),
            params=data.get("params"),
        )
        return Response(ApprovalSerializer(approval).data)

    @extend_schema(request=DenyInputSerializer, responses=ApprovalSerializer)
    @action(detail=True, methods=["post"])
    def deny(self, request: Request, pk: str | None = None) -> Response:
        data = valid_input(DenyInputSerializer, request)
        approval = services.approval_resolve(
            approval=self.get_object(), actor=request_actor(request), approved=False, note=data.get("note", "")
        )
        return Response(ApprovalSerializer(approval).data)


RULES_READ = ("agents:read", "approvals.view_approvalrequest")
RULES_WRITE = ("agents:write", "approvals.change_riskrule")


class RiskRuleViewSet(viewsets.GenericViewSet):
    """The organization's risk rules, read before the platform's defaults."""

    permission_classes = [AccessRules]
    access_rules = {
        "list": RULES_READ,
        "retrieve": RULES_READ,
        "create": RULES_WRITE,
        "partial_update": RULES_WRITE,
        "destroy": RULES_WRITE,
    }
    serializer_class = RiskRuleSerializer
    queryset = RiskRule.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return RiskRule.objects.filter(organization=request_actor(self.request).organization)

    def get_object(self) -> RiskRule:
        try:
            pk = uuid.UUID(self.kwargs["pk"])
        except ValueError:
            raise NotFound("Risk rule not found.") from None
        rule = self.get_queryset().filter(pk=pk).first()
        if rule is None:
            raise NotFound("Risk rule not found.")
        return rule

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(RiskRuleSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(RiskRuleSerializer(self.get_object()).data)

    def create(self, request: Request) -> Response:
        data = valid_input(RiskRuleSerializer, request)
        rule = services.risk_rule_save(actor=request_actor(request), data=data)
        return Response(RiskRuleSerializer(rule).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        rule = self.get_object()
        payload = RiskRuleSerializer(rule, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        rule = services.risk_rule_save(actor=request_actor(request), data=dict(payload.validated_data), rule=rule)
        return Response(RiskRuleSerializer(rule).data)

    def destroy(self, request: Request, pk: str) -> Response:
        services.risk_rule_delete(actor=request_actor(request), rule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
