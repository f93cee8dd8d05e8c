"""The playground of one agent and the Run / Re-run actions (console.urls).

Who may do what is the API's rule, read from the admin session: a superuser acts for the
platform; an organization admin acts with their role in the agent's organization (running
needs ``agents.execute_agent``, deciding ``approvals.resolve_approvalrequest``). Another
organization's agent, run or request answers 404, as everywhere.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.access import Actor
from accounts.admin_scoping import admin_actor, managed_organization_ids
from agents.models import Agent, AgentVersion, ProviderConnection
from agents.selectors import agent_has_unpublished_changes, agent_rights_for
from approvals.models import ApprovalRequest
from approvals.services import approval_resolve
from config.api.errors import ApiError, error_response
from config.api.json_input import JsonInputError, json_loads_bounded
from console.connections import mcp_server_check, provider_connection_check
from executions.api.sse import event_stream
from executions.models import Execution
from executions.services import execution_start
from tools.models import McpServer

EXECUTE = "agents.execute_agent"
RESOLVE = "approvals.resolve_approvalrequest"
MANAGE_CONNECTIONS = "billing.manage_provider_connections"
MANAGE_MCP = "tools.change_tool"  # the API's rule for writing mcp-servers/
MAX_TASK_CHARS = 50_000
DECISIONS = ("approve", "deny")
DRAFT = "draft"  # the playground's choice for the unpublished draft, beside version ids
ZERO_ID = "00000000-0000-0000-0000-000000000000"


def _actor(request: HttpRequest, organization: Any, perm: str) -> Actor | None:
    """None for a superuser (the platform), else the organization admin with ``perm``."""
    user = request.user
    if user.is_active and user.is_superuser:
        return None
    actor = admin_actor(request, organization.pk)
    if not actor.has_perm(perm):
        raise PermissionDenied(f"Your role does not allow this ({perm}).")
    return actor


def _may_edit(request: HttpRequest, agent: Agent) -> bool:
    """Whether the session may run the agent's draft: the API's rule, the right to edit it."""
    user = request.user
    if user.is_active and user.is_superuser:
        return True
    return "write" in agent_rights_for(actor=admin_actor(request, agent.organization_id), agent=agent)


def _draft_actor(request: HttpRequest, agent: Agent) -> Actor | None:
    actor = _actor(request, agent.organization, EXECUTE)
    if not _may_edit(request, agent):
        raise PermissionDenied("Only members who may edit this agent may run its draft.")
    return actor


def _visible(request: HttpRequest, queryset: Any, path: str = "organization_id") -> Any:
    user = request.user
    if user.is_active and user.is_superuser:
        return queryset
    if not (user.is_active and user.is_staff):
        raise PermissionDenied
    return queryset.filter(**{f"{path}__in": managed_organization_ids(request)})


def _agent(request: HttpRequest, agent_id: Any) -> Agent:
    agent = (
        _visible(request, Agent.objects.filter(deleted_at__isnull=True, organization__isnull=False))
        .select_related("organization", "current_version")
        .filter(pk=agent_id)
        .first()
    )
    if agent is None:
        raise Http404("No such agent.")
    return agent


def _error(message: str, **problems: list[str]) -> JsonResponse:
    """The API's error shape (DESIGN.md section 11), so the page shows the same messages."""
    return error_response("InvalidInput", message, {"validation_errors": problems} if problems else None)


def _refused(error: ApiError) -> JsonResponse:
    return error_response(error.code, error.message, error.details)


@require_GET
def playground(request: HttpRequest, agent_id: Any) -> HttpResponse:
    agent = _agent(request, agent_id)
    versions = list(AgentVersion.objects.filter(agent=agent).order_by("-major", "-minor", "-patch")[:50])
    recent = list(Execution.objects.filter(agent=agent).select_related("agent_version").order_by("-created_at")[:10])
    context = {
        **admin.site.each_context(request),
        "title": f"Playground · {agent.name}",
        "agent": agent,
        "versions": versions,
        "recent": recent,
        "runnable": agent.current_version_id is not None and agent.status in ("published", "deprecated"),
        # The draft runs while the agent is not archived, for who may edit it (the API's rule).
        "draft_runnable": agent.status != "archived" and _may_edit(request, agent),
        "draft_changed": agent_has_unpublished_changes(agent),
        "run_url": reverse("console-run", args=[agent.pk]),
        "agent_url": reverse("admin:agents_agent_change", args=[agent.pk]),
    }
    return TemplateResponse(request, "admin/console/playground.html", context)


def _run_payload(execution: Execution) -> dict[str, Any]:
    return {
        "id": str(execution.pk),
        "version": execution.version_label,
        "draft": execution.is_draft,
        "status": execution.status,
        "stream_url": reverse("console-stream", args=[execution.pk]),
        "trace_url": reverse("admin:executions_execution_change", args=[execution.pk]),
        # The page appends "<approval id>/approve/" or ".../deny/" (ids arrive with the events).
        "decide_url": reverse("console-decide", args=[ZERO_ID, "approve"]).removesuffix(f"{ZERO_ID}/approve/"),
    }


@require_POST
def run(request: HttpRequest, agent_id: Any) -> JsonResponse:
    """Start one run per chosen version (two: a comparison) with the same task and context;
    the choice "draft" runs the unpublished draft (who may edit the agent only)."""
    agent = _agent(request, agent_id)
    task = (request.POST.get("task") or "").strip()
    if not task:
        return _error("Give the agent a task.", task=["Required."])
    if len(task) > MAX_TASK_CHARS:
        return _error(f"The task is longer than {MAX_TASK_CHARS} characters.", task=["Too long."])
    try:
        context = json_loads_bounded(request.POST.get("context") or "{}")
    except (JsonInputError, ValueError) as bad:
        return _error(f"The context is not valid JSON: {bad}", context=[str(bad)])
    if not isinstance(context, dict):
        return _error("The context must be a JSON object.", context=["Must be an object."])
    chosen = [v for v in request.POST.getlist("version") if v]
    ids = [v for v in chosen if v != DRAFT]
    try:
        versions = {str(v.pk): v for v in AgentVersion.objects.filter(agent=agent, pk__in=ids)} if ids else {}
    except ValidationError:  # not a UUID
        versions = {}
    if len(versions) != len(set(ids)):
        return _error("Unknown version for this agent.", version=["Unknown."])
    actor = _draft_actor(request, agent) if DRAFT in chosen else _actor(request, agent.organization, EXECUTE)
    runs = []
    for version_id in dict.fromkeys(chosen) or [None]:
        try:
            execution, _ = execution_start(
                agent=agent,
                organization=agent.organization,
                task=task,
                context=context,
                actor=actor,
                version=versions.get(version_id) if version_id and version_id != DRAFT else None,
                draft=version_id == DRAFT,
                trigger_data={"source": "console playground"},
            )
        except ApiError as refused:
            return _refused(refused)
        runs.append(_run_payload(execution))
    return JsonResponse({"runs": runs}, status=202)


@require_POST
def rerun(request: HttpRequest, execution_id: Any) -> HttpResponse:
    """The same task and context again, on the agent's current version (a draft run: on the
    current draft, for who may edit the agent)."""
    execution = (
        _visible(request, Execution.objects.select_related("agent", "organization")).filter(pk=execution_id).first()
    )
    if execution is None:
        raise Http404("No such execution.")
    draft = execution.is_draft
    actor = _draft_actor(request, execution.agent) if draft else _actor(request, execution.organization, EXECUTE)
    try:
        again, _ = execution_start(
            agent=execution.agent,
            organization=execution.organization,
            task=execution.input.get("task", ""),
            context=execution.input.get("context") or {},
            actor=actor,
            draft=draft,
            trigger_data={"source": "console re-run", "rerun_of": str(execution.pk)},
        )
    except ApiError as refused:
        messages.error(request, f"Not re-run: {refused.message}")
        return redirect("admin:executions_execution_change", execution.pk)
    on = "the current draft (unpublished)" if again.is_draft else f"version {again.version_label}"
    messages.success(request, f"Re-run started on {on}.")
    return redirect("admin:executions_execution_change", again.pk)


@require_GET
def stream(request: HttpRequest, execution_id: Any) -> StreamingHttpResponse:
    """The run's events (the API's SSE stream) for the playground, under the admin session."""
    if not _visible(request, Execution.objects.filter(pk=execution_id)).exists():
        raise Http404("No such execution.")
    response = StreamingHttpResponse(event_stream(execution_id, 0), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@require_POST
def decide(request: HttpRequest, approval_id: Any, decision: str) -> JsonResponse:
    if decision not in DECISIONS:
        raise Http404("Approve or deny.")
    approval = _visible(request, ApprovalRequest.objects.select_related("organization")).filter(pk=approval_id).first()
    if approval is None:
        raise Http404("No such approval request.")
    actor = _actor(request, approval.organization, RESOLVE) or Actor(
        organization=approval.organization,
        user=request.user,  # type: ignore[arg-type]
    )
    try:
        resolved = approval_resolve(
            approval=approval, actor=actor, approved=decision == "approve", note=request.POST.get("note", "")
        )
    except ApiError as refused:
        return _refused(refused)
    return JsonResponse({"id": str(resolved.pk), "status": resolved.status})


def _tested(request: HttpRequest, check: Any, change_url: str) -> HttpResponse:
    (messages.success if check.ok else messages.error)(request, f"Test connection: {check.message}")
    return redirect(change_url)


@require_POST
def test_provider_connection(request: HttpRequest, connection_id: Any) -> HttpResponse:
    """Organization admins test their own connections; the platform's (no organization, the
    platform's keys) only a superuser."""
    connection = (
        (
            _visible(request, ProviderConnection.objects.filter(organization__isnull=False))
            if not request.user.is_superuser
            else ProviderConnection.objects.all()
        )
        .filter(pk=connection_id)
        .first()
    )
    if connection is None:
        raise Http404("No such provider connection.")
    if connection.organization is not None:
        _actor(request, connection.organization, MANAGE_CONNECTIONS)
    check = provider_connection_check(connection)
    return _tested(request, check, reverse("admin:agents_providerconnection_change", args=[connection.pk]))


@require_POST
def test_mcp_server(request: HttpRequest, server_id: Any) -> HttpResponse:
    server = (
        (
            McpServer.objects.all()
            if request.user.is_superuser
            else _visible(request, McpServer.objects.filter(organization__isnull=False))
        )
        .filter(pk=server_id)
        .first()
    )
    if server is None:
        raise Http404("No such MCP server.")
    if server.organization is not None:
        _actor(request, server.organization, MANAGE_MCP)
    check = mcp_server_check(server)
    return _tested(request, check, reverse("admin:tools_mcpserver_change", args=[server.pk]))
