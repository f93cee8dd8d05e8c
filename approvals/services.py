"""Writes for approvals: open a request for a held tool call, resolve it once, expire it.

How a request moves the run (DESIGN.md §5 and §7):

- opened inside the runtime's transaction that parks the run in ``waiting_approval``
  (``approval_open_for_step``, the ``open_approval`` runtime hook);
- approved: the held act step gets the final arguments and status ``approved``, the run goes
  back to ``running`` with no lease, and is queued; the worker that claims it runs that one
  call, then carries on (``executions.held_calls.held_call_resume``);
- denied or expired: the step is marked ``denied`` and the run is cancelled with the note
  (``executions.held_calls.held_call_end``).

This module writes approval requests only: the run, its steps and tool-call rows change
through the executions app's services.

Resolution is one-shot: the request row is locked (``select_for_update``) and only a
``pending`` request that has not expired can be resolved; a second approver waits for the
lock, then gets 409 with the first decision.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import DatabaseError, transaction
from django.utils import timezone

from accounts.access import Actor
from accounts.services import activity_record
from approvals.models import ApprovalRequest, ApprovalStatus, RiskRule
from approvals.selectors import approvers_of
from approvals.tasks import notify_approvers
from billing.usage import usage_count
from config.api.errors import Conflict, InvalidInput, NotFound
from config.site import base_url as site_base_url
from executions import telemetry
from executions.events import event_emit
from executions.held_calls import held_call_close, held_call_end, held_call_resume
from executions.models import TERMINAL_STATUSES, Execution, ExecutionStatus, ExecutionStep
from tools.gateway import tool_schema, validation_errors
from tools.services import notification_create

logger = logging.getLogger(__name__)

S = ExecutionStatus
DEFAULT_TTL_SECONDS = 24 * 3600


def approval_ttl() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "AGENTRY_APPROVAL_TTL_SECONDS", DEFAULT_TTL_SECONDS)))


# --- Opening -------------------------------------------------------------------------------


def approval_open_for_step(*, execution: Execution, step: ExecutionStep, outcome: Any) -> dict[str, Any]:
    """The ``open_approval`` runtime hook: inside the transaction that holds the call."""
    details = outcome.approval or {}
    params = step.tool_input if isinstance(step.tool_input, dict) else {}
    approval = ApprovalRequest.objects.create(
        organization_id=execution.organization_id,
        execution=execution,
        agent_id=execution.agent_id,
        step=step,
        step_number=step.step_number,
        action_type=step.tool_name,
        action_description=details.get("description") or f"Call {step.tool_name}",
        action_params=params,
        original_params=params,
        risk_level=details.get("risk_level") or "low",
        risk_explanation=details.get("reason") or "",
        expires_at=timezone.now() + approval_ttl(),
    )
    link = f"/approvals/{approval.pk}/"
    for user in approvers_of(organization_id=execution.organization_id):
        notification_create(
            organization_id=execution.organization_id,
            user=user,
            title=f"Approval needed ({approval.risk_level} risk)",
            message=approval.action_description,
            link=link,
            agent_id=execution.agent_id,
            execution_id=execution.pk,
        )
    event_emit(
        organization_id=execution.organization_id,
        event_type="ai.approval.requested",
        payload={
            "approval_id": approval.pk,
            "agent_id": execution.agent_id,
            "execution_id": execution.pk,
            "action_type": approval.action_type,
            "risk_level": approval.risk_level,
            "expires_at": approval.expires_at,
        },
        agent_id=execution.agent_id,
        execution_id=execution.pk,
    )
    usage_count(organization=execution.organization, agent_id=execution.agent_id, approvals=1)

    approval_id = str(approval.pk)
    # Email goes out from a worker after commit: a slow mail server never holds up a run,
    # and a broker hiccup (robust) costs the email, not the run; the page and the in-app
    # notification still show the request.
    transaction.on_commit(lambda: notify_approvers.apply_async(args=[approval_id], queue="default"), robust=True)
    return {
        "approval_id": approval_id,
        "risk_level": approval.risk_level,
        "reason": approval.risk_explanation,
        "expires_at": approval.expires_at.isoformat(),
        "url": link,
    }


def approval_notify_by_email(*, approval: ApprovalRequest, base_url: str | None = None) -> int:
    """E-mail the approvers; the link is absolute (config.site: AGENTRY_BASE_URL or the
    address the installation is reached at), as a mail client has no page to be relative to."""
    base_url = (base_url or site_base_url()).rstrip("/")
    recipients = [u.email for u in approvers_of(organization_id=approval.organization_id) if u.email]
    if not recipients:
        return 0
    subject = f"[Agentry] Approval needed: {approval.action_type} ({approval.risk_level} risk)"
    body = (
        f"The agent {approval.agent.name} wants to: {approval.action_description}\n\n"
        f"Why it needs a person: {approval.risk_explanation}\n"
        f"Decide before {approval.expires_at:%Y-%m-%d %H:%M %Z}: {base_url}/approvals/{approval.pk}/\n"
    )
    messages = [(subject, body, settings.DEFAULT_FROM_EMAIL, [to]) for to in recipients]
    return send_mass_mail(messages, fail_silently=False)


# --- Resolving ---------------------------------------------------------------------------


def _validate_params(approval: ApprovalRequest, params: Any) -> None:
    if not isinstance(params, dict):
        raise InvalidInput(validation_errors={"params": ["Must be a JSON object of the tool's arguments."]})
    schema = tool_schema(organization_id=approval.organization_id, name=approval.action_type)
    if schema is None:
        raise Conflict(f"The tool {approval.action_type!r} is no longer available.")
    problems = validation_errors(schema, params)
    if problems:
        raise InvalidInput(
            "The edited parameters do not match the tool's schema; nothing was approved.",
            validation_errors={"params": problems},
            details={"parameters_schema": schema},
        )


def _already(approval: ApprovalRequest) -> Conflict:
    return Conflict(
        f"This request is already {approval.status}.",
        details={
            "status": approval.status,
            "resolved_by": approval.resolved_by.get_username() if approval.resolved_by else None,
            "resolved_at": approval.resolved_at.isoformat() if approval.resolved_at else None,
        },
    )


def approval_resolve(
    *,
    approval: ApprovalRequest,
    actor: Actor,
    approved: bool,
    note: str = "",
    params: dict[str, Any] | None = None,
) -> ApprovalRequest:
    """Approve (optionally with edited ``params``) or deny; raises Conflict when it was
    resolved or expired already, InvalidInput when edited params fail the schema."""
    note = (note or "").strip()[:2000]
    if params is not None and not approved:
        raise InvalidInput(validation_errors={"params": ["Parameters can only be edited when approving."]})
    with transaction.atomic():
        # The lock is the one-shot guarantee: whoever gets it first decides; the others
        # wait here and then find the request no longer pending.
        locked = (
            ApprovalRequest.objects.select_for_update().filter(pk=approval.pk, organization=actor.organization).first()
        )
        if locked is None:
            raise NotFound("Approval request not found.")
        if locked.status != ApprovalStatus.PENDING:
            raise _already(locked)
        now = timezone.now()
        if locked.expires_at <= now:
            raise Conflict(
                "This request has expired; the run will be cancelled.",
                details={"status": ApprovalStatus.EXPIRED, "expired_at": locked.expires_at.isoformat()},
            )
        execution = Execution.objects.select_for_update(no_key=True).get(pk=locked.execution_id)
        if execution.status != S.WAITING_APPROVAL:
            raise Conflict(
                f"The run is {execution.status} and no longer waits for this decision.",
                details={"execution_status": execution.status},
            )
        if approved:
            final = locked.action_params if params is None else params
            if params is not None:
                _validate_params(locked, params)
            held_call_resume(
                execution=execution,
                step_number=locked.step_number,
                params=final,
                edited=final != locked.original_params,
                approval_id=locked.pk,
                held_since=locked.created_at,
                approver=_approver(actor),
                note=note,
            )
            locked.action_params = final
            locked.status = ApprovalStatus.APPROVED
        else:
            reason = f"Denied by {_approver(actor)}" + (f": {note}" if note else ".")
            held_call_end(
                execution=execution,
                step_number=locked.step_number,
                approval_id=locked.pk,
                reason=reason,
                code="ApprovalDenied",
                note=note,
                action=locked.action_type,
            )
            locked.status = ApprovalStatus.DENIED
        locked.resolved_by = actor.user  # type: ignore[assignment]
        locked.resolved_at = now
        locked.resolution_note = note
        locked.save(update_fields=["status", "action_params", "resolved_by", "resolved_at", "resolution_note"])
        activity_record(
            organization=actor.organization,
            actor=actor,
            action=f"approval.{locked.status}",
            target=locked,
            agent_id=locked.agent_id,
            request_summary={"note": note[:200], "params_edited": locked.params_edited},
        )
        telemetry.approval_waited(execution, approval=locked, decision=locked.status)
        _emit_resolved(locked)
    return locked


def _approver(actor: Actor) -> str:
    return actor.user.get_username() if actor.user else "an approver"  # type: ignore[union-attr]


def _emit_resolved(approval: ApprovalRequest) -> None:
    event_emit(
        organization_id=approval.organization_id,
        event_type="ai.approval.resolved",
        payload={
            "approval_id": approval.pk,
            "approved": approval.status == ApprovalStatus.APPROVED,
            "status": approval.status,
            "resolved_by": approval.resolved_by_id,
            "execution_id": approval.execution_id,
            "params_edited": approval.params_edited,
        },
        agent_id=approval.agent_id,
        execution_id=approval.execution_id,
    )


# --- Expiry and clean-up ----------------------------------------------------------------


def approvals_expire(*, now: Any = None, limit: int = 500) -> int:
    """Expire pending requests past their time and cancel their runs; returns how many."""
    now = now or timezone.now()
    due = list(
        ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:limit]
    )
    expired = 0
    for pk in due:
        with transaction.atomic():
            # skip_locked: a request an approver is resolving right now is theirs to decide.
            approval = (
                ApprovalRequest.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, status=ApprovalStatus.PENDING)
                .first()
            )
            if approval is None:
                continue
            execution = Execution.objects.select_for_update(no_key=True).get(pk=approval.execution_id)
            reason = "The approval request expired before anyone decided."
            held_call_end(
                execution=execution,
                step_number=approval.step_number,
                approval_id=approval.pk,
                reason=reason,
                code="ApprovalExpired",
                action=approval.action_type,
            )
            approval.status = ApprovalStatus.EXPIRED
            approval.resolved_at = now
            approval.resolution_note = reason
            approval.save(update_fields=["status", "resolved_at", "resolution_note"])
            activity_record(
                organization=approval.organization,
                action="approval.expired",
                target=approval,
                agent_id=approval.agent_id,
            )
            telemetry.approval_waited(execution, approval=approval, decision=approval.status)
            _emit_resolved(approval)
            expired += 1
    if expired:
        logger.info("expired %d approval requests", expired)
    return expired


def approvals_close_for_execution(execution_id: Any, *, execution: Any = None) -> int:
    """``after_execution_finished`` hook: a run that ended another way (cancelled on
    request, say) leaves no request pending and no step awaiting a decision."""
    pending = ApprovalRequest.objects.filter(
        execution_id=execution_id, status=ApprovalStatus.PENDING, execution__status__in=TERMINAL_STATUSES
    )
    try:
        return _close_pending(execution_id, list(pending))
    except DatabaseError:
        # Runs after the run's own commit: a database blip must not look like the run failed.
        # A request left pending is closed by the expiry sweep (its run is no longer waiting).
        logger.warning("could not close approval requests of execution %s", execution_id, exc_info=True)
        return 0


def _close_pending(execution_id: Any, pending: list[ApprovalRequest]) -> int:
    closed = 0
    for approval in pending:
        reason = "The run ended before anyone decided."
        with transaction.atomic():
            updated = ApprovalRequest.objects.filter(pk=approval.pk, status=ApprovalStatus.PENDING).update(
                status=ApprovalStatus.CANCELLED, resolved_at=timezone.now(), resolution_note=reason
            )
            if not updated:
                continue
            held_call_close(execution_id=execution_id, step_number=approval.step_number, reason=reason)
            closed += 1
    return closed


# --- Risk rules ----------------------------------------------------------------------------


def risk_rule_save(*, actor: Actor, data: dict[str, Any], rule: Any = None) -> Any:
    with transaction.atomic():
        if rule is None:
            rule = RiskRule(organization=actor.organization)
        for field, value in data.items():
            setattr(rule, field, value)
        rule.save()
        activity_record(
            organization=actor.organization,
            actor=actor,
            action="risk_rule.save",
            target=rule,
            request_summary={k: v for k, v in data.items() if k != "description"},
        )
    return rule


def risk_rule_delete(*, actor: Actor, rule: Any) -> None:
    with transaction.atomic():
        activity_record(
            organization=actor.organization, actor=actor, action="risk_rule.delete", target=rule,
            request_summary={"pattern": rule.pattern},
        )  # fmt: skip
        rule.delete()
