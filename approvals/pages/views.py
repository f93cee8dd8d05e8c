"""Server-rendered pages for approvers: the pending list and one request with its decision.

Session login; only people whose role in the request's organization may resolve requests
see it (anyone else gets 404). Decisions are POST only, CSRF-protected (Django's middleware),
and every page refuses to be framed (clickjacking an Approve button is the attack).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_deny
from django.views.decorators.http import require_GET, require_POST

from approvals import selectors, services
from approvals.models import ApprovalStatus
from config.api.errors import ApiError, NotFound
from config.api.json_input import JsonInputError, json_loads_bounded
from executions.models import ExecutionStep
from tools.selectors import tool_calls_for_execution

PAGE_SIZE = 100


def _approval(request: HttpRequest, approval_id: Any):
    try:
        return selectors.approval_get_for_approver(user=request.user, approval_id=approval_id)
    except NotFound:
        raise Http404("No such approval request.") from None


@xframe_options_deny
@login_required
@require_GET
def approval_list(request: HttpRequest) -> HttpResponse:
    if not selectors.approver_memberships(user=request.user):
        raise PermissionDenied("You may not resolve approval requests in any organization.")
    show = request.GET.get("show", "pending")
    qs = selectors.approvals_for_approver(user=request.user).order_by("expires_at")
    qs = qs.filter(status=ApprovalStatus.PENDING) if show == "pending" else qs.order_by("-created_at")
    return render(
        request,
        "approvals/list.html",
        {"approvals": list(qs[:PAGE_SIZE]), "show": show, "now": timezone.now()},
    )


def _detail_context(approval: Any, **extra: Any) -> dict[str, Any]:
    steps = ExecutionStep.objects.filter(execution_id=approval.execution_id).order_by("step_number")
    return {
        "approval": approval,
        "execution": approval.execution,
        "steps": steps,
        "tool_calls": tool_calls_for_execution(execution_id=approval.execution_id),
        "params_json": json.dumps(approval.action_params, indent=2, ensure_ascii=False),
        "now": timezone.now(),
        **extra,
    }


@xframe_options_deny
@login_required
@require_GET
def approval_detail(request: HttpRequest, approval_id: Any) -> HttpResponse:
    approval, _actor = _approval(request, approval_id)
    return render(request, "approvals/detail.html", _detail_context(approval))


@xframe_options_deny
@login_required
@require_POST
def approval_decide(request: HttpRequest, approval_id: Any, decision: str) -> HttpResponse:
    approval, actor = _approval(request, approval_id)
    note = request.POST.get("note", "")
    params = None
    if decision == "approve" and "params" in request.POST:
        raw = request.POST["params"]
        try:
            params = json_loads_bounded(raw)
        except JsonInputError as exc:
            context = _detail_context(approval, params_json=raw, error=f"The parameters cannot be used: {exc}")
            return render(request, "approvals/detail.html", context, status=400)
        except ValueError as exc:
            context = _detail_context(approval, params_json=raw, error=f"The parameters are not valid JSON: {exc}")
            return render(request, "approvals/detail.html", context, status=400)
        if params == approval.action_params:
            params = None  # unchanged: approve what the agent asked for
    try:
        services.approval_resolve(
            approval=approval, actor=actor, approved=decision == "approve", note=note, params=params
        )
    except ApiError as exc:
        approval.refresh_from_db()
        problems = exc.details.get("validation_errors", {}).get("params", [])
        context = _detail_context(
            approval,
            params_json=request.POST.get("params") or json.dumps(approval.action_params, indent=2),
            error=exc.message,
            problems=problems,
        )
        return render(request, "approvals/detail.html", context, status=exc.status_code)
    verb = "Approved" if decision == "approve" else "Denied"
    messages.success(request, f"{verb}: {approval.action_description}")
    return redirect("approvals:list")
