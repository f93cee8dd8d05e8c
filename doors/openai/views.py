"""OpenAI-compatible endpoints under /openai/v1: an Agentry API token is the ``api_key``, an
agent's slug (or id) is the ``model``. Each request is an ordinary execution (trigger
``openai``): the REST API's authentication, scopes, throttling, quota and price.

Not in the OpenAPI schema of /api/v1: OpenAI's own API reference is the contract of these
paths, and their errors are in OpenAI's shape rather than DESIGN.md §11's.
"""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccessRules, Actor, request_actor
from agents.selectors import agent_run_config
from doors import common
from doors.openai import chat, responses
from doors.openai.errors import OpenAIInvalid, exception_handler
from doors.openai.parsing import RunRequest, chat_request, responses_request
from executions.models import Execution, TriggerType

EXECUTE = ("agents:execute", "agents.execute_agent")
READ = ("agents:read", "executions.view_execution")
IGNORED_HEADER = "X-Agentry-Ignored-Parameters"


@extend_schema(exclude=True)
class OpenAIView(APIView):
    permission_classes = [AccessRules]

    def get_exception_handler(self):
        return exception_handler


def _base_url(request: Request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _model(agent: Any) -> dict[str, Any]:
    return {
        "id": agent.slug,
        "object": "model",
        "created": int(agent.created_at.timestamp()),
        "owned_by": "agentry" if agent.organization_id is None else "organization",
        "agentry": {"agent_id": str(agent.pk), "name": agent.name, "description": agent.description},
    }


class ModelsView(OpenAIView):
    """The published agents the token may execute."""

    access_rules = {"get": READ}

    def get(self, request: Request) -> Response:
        agents = common.door_agents(actor=request_actor(request))
        return Response({"object": "list", "data": [_model(a) for a in agents]})


class ModelView(OpenAIView):
    access_rules = {"get": READ}

    def get(self, request: Request, model: str) -> Response:
        return Response(_model(common.door_agent(actor=request_actor(request), ref=model)))


def _start(actor: Actor, run: RunRequest, *, endpoint: str, extra: dict[str, Any] | None = None) -> Execution:
    agent = common.door_agent(actor=actor, ref=run.model)
    _, config, _ = agent_run_config(agent=agent, organization=actor.organization)
    ceiling = (config.get("model_config") or {}).get("max_tokens")
    if run.max_tokens is not None and ceiling and run.max_tokens > ceiling:
        param = "max_output_tokens" if endpoint == "responses" else "max_tokens"
        raise OpenAIInvalid(f"At most {ceiling} tokens: the agent's own max_tokens.", param=param)
    return common.door_start(
        actor=actor,
        agent=agent,
        trigger_type=TriggerType.OPENAI,
        task=run.task,
        trigger_data={"endpoint": endpoint, "model": run.model, **(extra or {})},
        history=run.history,
        caller_instructions=run.instructions,
        max_tokens=run.max_tokens,
        temperature=run.temperature,
    )


def _stream(events: Any, ignored: list[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    if ignored:
        response[IGNORED_HEADER] = ", ".join(ignored)
    return response


def _answer(status: int, body: dict[str, Any], ignored: list[str]) -> Response:
    headers = {IGNORED_HEADER: ", ".join(ignored)} if ignored else None
    return Response(body, status=status, headers=headers)


class ChatCompletionsView(OpenAIView):
    access_rules = {"post": EXECUTE}

    def post(self, request: Request) -> Response | StreamingHttpResponse:
        run = chat_request(request.data)
        execution = _start(request_actor(request), run, endpoint="chat.completions")
        base = _base_url(request)
        if run.stream:
            return _stream(chat.completion_chunks(execution, run.model, base, run.include_usage), run.ignored)
        execution = common.door_wait(execution)
        status, body = chat.completion(execution, run.model, base)
        return _answer(status, body, run.ignored)


class ResponsesView(OpenAIView):
    access_rules = {"post": EXECUTE}

    def post(self, request: Request) -> Response | StreamingHttpResponse:
        actor = request_actor(request)
        run, previous_id = responses_request(request.data)
        extra: dict[str, Any] = {}
        if previous_id:
            previous = common.door_execution(
                actor=actor,
                execution_id=responses.execution_id_of(previous_id, "previous_response_id"),
                trigger_type=TriggerType.OPENAI,
            )
            run.history = responses.continued_history(previous) + run.history
            extra["previous_response_id"] = previous_id
        execution = _start(actor, run, endpoint="responses", extra=extra)
        base = _base_url(request)
        if run.stream:
            return _stream(responses.response_events(execution, run.model, base), run.ignored)
        execution = common.door_wait(execution)
        return _answer(200, responses.response_body(execution, run.model, base), run.ignored)


class ResponseView(OpenAIView):
    access_rules = {"get": READ}

    def get(self, request: Request, response_id: str) -> Response:
        execution = common.door_execution(
            actor=request_actor(request),
            execution_id=responses.execution_id_of(response_id),
            trigger_type=TriggerType.OPENAI,
        )
        model = (execution.trigger_data or {}).get("model") or execution.agent.slug
        return Response(responses.response_body(execution, model, _base_url(request)))
