"""A2A over HTTP, in Django's hands: the Agent Card, and the JSON-RPC binding at the agent's
A2A base URL, ``/a2a/{agent_id}/``.

The a2a-sdk's JsonRpcDispatcher does the protocol (JSON-RPC framing, the v1.0 method names and
v0.3's ``message/send`` ..., protobuf validation, the SSE encoding of streams); it is given a
Starlette request made from the Django one and its response is handed back to Django. The SDK's
Starlette app is not mounted beside Django: this way a request passes Django's middleware
(request ids, logs, metrics, security headers) and DRF's authentication and throttling like
every REST call, the token's organization and scopes are resolved once by the project's own
code, and another organization's agent is a 404 before the SDK sees the body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.routes.common import DefaultServerCallContextBuilder
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from asgiref.sync import async_to_sync
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from sse_starlette.event import ensure_bytes
from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request as StarletteRequest

from accounts.access import AccessRules, Actor, IsOrganizationMember, request_actor
from agents.models import Agent
from agents.selectors import agent_get, platform_agent_get
from config.api.errors import ApiError
from config.api.negotiation import ErrorsAsJson
from config.site import answer_base_url
from doors.a2a.card import agent_card, card_json
from doors.a2a.tasks import ExecutionRequestHandler
from executions.api.sse import EventStreamRenderer


class _ContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context, carrying what Django resolved (actor, agent, base URL)."""

    def build(self, request: StarletteRequest) -> ServerCallContext:
        context = super().build(request)
        context.state.update(request.scope["agentry"])
        return context


DISPATCHER = JsonRpcDispatcher(
    request_handler=ExecutionRequestHandler(), context_builder=_ContextBuilder(), enable_v0_3_compat=True
)


def a2a_agent(actor: Actor, agent_id: str) -> Agent:
    """The agent at this A2A URL for the actor: one it may see, or a platform agent."""
    try:
        return agent_get(actor=actor, agent_id=agent_id)
    except ApiError:
        return platform_agent_get(agent_id=agent_id)


def _base_url(request: Request) -> str:
    return answer_base_url(request.build_absolute_uri("/"))


@extend_schema(exclude=True)  # A2A's own specification is the contract of these paths
class AgentCardView(APIView):
    permission_classes = [AccessRules]
    access_rules = {"get": ("agents:read", "agents.view_agent")}

    def get(self, request: Request, agent_id: str) -> Response:
        actor = request_actor(request)
        card = agent_card(actor=actor, agent=a2a_agent(actor, agent_id), base_url=_base_url(request))
        return Response(card_json(card))


def _starlette_request(request: Request, state: dict[str, Any]) -> StarletteRequest:
    body = request._request.body  # the raw JSON-RPC body (DRF's parsers never read it)
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": request.path,
        "query_string": request.META.get("QUERY_STRING", "").encode(),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()],
        "agentry": state,
    }
    return StarletteRequest(scope, receive)


async def _sse(response: EventSourceResponse) -> AsyncIterator[bytes]:
    async for item in response.body_iterator:
        yield ensure_bytes(item, "\r\n")


@extend_schema(exclude=True)
class JsonRpcView(ErrorsAsJson, APIView):
    """Scopes are per method, checked by the handler (agents:execute to send or cancel,
    agents:read to read a task), like the REST API's for the same operations."""

    permission_classes = [IsOrganizationMember]
    parser_classes: list = []
    # A streaming call asks for text/event-stream; errors before the stream are JSON.
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    def post(self, request: Request, agent_id: str) -> HttpResponse | StreamingHttpResponse:
        actor = request_actor(request)
        agent = a2a_agent(actor, agent_id)
        state = {"agentry_actor": actor, "agentry_agent": agent, "agentry_base_url": _base_url(request)}
        answer = async_to_sync(DISPATCHER.handle_requests)(_starlette_request(request, state))
        if isinstance(answer, EventSourceResponse):
            stream = StreamingHttpResponse(_sse(answer), content_type="text/event-stream")
            stream["Cache-Control"] = "no-cache"
            stream["X-Accel-Buffering"] = "no"
            return stream
        return HttpResponse(answer.body, status=answer.status_code, content_type="application/json")
