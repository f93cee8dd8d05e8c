"""Reads for approvals: always within one organization, and for pages only the
organizations where the person may resolve requests."""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import CharField, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat, JSONObject

from accounts.access import Actor
from accounts.models import Membership
from agents.access import visible_agents_q
from agents.models import Agent
from approvals.models import ApprovalRequest, ApprovalStatus, RiskRule
from config.api.errors import NotFound
from config.api.ids import one_or_not_found, uuid_or_none

RESOLVE_PERMISSION = "approvals.resolve_approvalrequest"


def approval_list(*, actor: Actor) -> QuerySet[ApprovalRequest]:
    """The organization's requests for agents the actor may see (all of them for approvers,
    who hold ``manage_all_agents`` by default; a private agent's runs stay private)."""
    visible = Agent.objects.filter(visible_agents_q(actor)).values("pk")
    return (
        ApprovalRequest.objects.filter(organization=actor.organization)
        .filter(Q(agent__in=visible) | Q(agent__organization__isnull=True))
        .select_related("agent", "resolved_by", "execution")
    )


def approval_get(*, actor: Actor, approval_id: Any) -> ApprovalRequest:
    return one_or_not_found(
        approval_list(actor=actor),
        approval_id,
        "Approval request not found.",
        details={"approval_id": str(approval_id)},
    )


def approval_for_step(*, execution_id: Any, step_number: int) -> ApprovalRequest | None:
    return (
        ApprovalRequest.objects.filter(execution_id=execution_id, step_number=step_number)
        .order_by("-created_at")
        .first()
    )


def approval_pending_for_execution(*, execution_id: Any) -> ApprovalRequest | None:
    """The request a run parked in ``waiting_approval`` waits on (the newest pending one)."""
    return (
        ApprovalRequest.objects.filter(execution_id=execution_id, status=ApprovalStatus.PENDING)
        .order_by("-created_at")
        .first()
    )


def approver_memberships(*, user: Any) -> list[Membership]:
    """The memberships through which ``user`` may resolve approval requests."""
    if not getattr(user, "is_authenticated", False):
        return []
    memberships = Membership.objects.select_related("organization").filter(user=user, organization__is_active=True)
    return [m for m in memberships if m.has_perm(RESOLVE_PERMISSION)]


def approver_actor(*, user: Any, organization_id: Any) -> Actor | None:
    for membership in approver_memberships(user=user):
        if membership.organization_id == organization_id:
            return Actor(organization=membership.organization, user=user, membership=membership)
    return None


def approvals_for_approver(*, user: Any) -> QuerySet[ApprovalRequest]:
    organization_ids = [m.organization_id for m in approver_memberships(user=user)]
    return ApprovalRequest.objects.filter(organization_id__in=organization_ids).select_related(
        "agent", "organization", "resolved_by"
    )


def approval_get_for_approver(*, user: Any, approval_id: Any) -> tuple[ApprovalRequest, Actor]:
    """The request and the actor resolving it; NotFound outside the person's organizations."""
    pk = uuid_or_none(approval_id)
    approval = approvals_for_approver(user=user).select_related("execution").filter(pk=pk).first() if pk else None
    actor = approver_actor(user=user, organization_id=approval.organization_id) if approval else None
    if approval is None or actor is None:
        raise NotFound("Approval request not found.")
    return approval, actor


def approvers_of(*, organization_id: Any) -> list[Any]:
    """The people who may resolve the organization's requests (to notify them)."""
    memberships = Membership.objects.select_related("user", "organization").filter(
        organization_id=organization_id, user__is_active=True
    )
    return [m.user for m in memberships if m.has_perm(RESOLVE_PERMISSION)]


def risk_rules_subquery(*, organization_id: Any) -> Any:
    """The organization's active risk rules as a JSON array expression (policy rule dicts),
    for the tool gateway's one query per run."""
    rules = (
        RiskRule.objects.filter(organization_id=organization_id, is_active=True)
        .order_by("position", "created_at")
        .values(
            json=JSONObject(
                pattern="pattern",
                risk_level="risk_level",
                count_field="count_field",
                count_threshold="count_threshold",
                threshold_risk_level="threshold_risk_level",
                source=Concat(Value("organization rule "), Cast("id", CharField())),
            )
        )
    )
    return ArraySubquery(rules)
