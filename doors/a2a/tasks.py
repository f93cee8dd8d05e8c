"""A2A tasks are executions (trigger ``a2a``): the SDK's RequestHandler, answered from the runtime.

- SendMessage: a run of the agent; the message's text parts are the task, its data parts the
  context (checked against the agent's input schema). A ``contextId`` continues a conversation:
  the run's history is the earlier runs of that context with this agent.
- SendStreamingMessage: the task, then its status and the answer artifact as the run goes.
- GetTask / CancelTask: the execution; cancelling cancels the run.
- A run waiting for a person's approval is ``TASK_STATE_AUTH_REQUIRED``: the protocol's state
  for "authorization from the client or a third party is needed", which an approver is; the
  status message carries the approver's link (``input-required`` would tell the client to
  send input, which cannot unblock it).

Push notifications, task lists and the extended card are not offered (the card says so).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import (
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from asgiref.sync import sync_to_async
from google.protobuf.json_format import MessageToDict

from accounts.access import Actor
from agents.models import Agent
from agents.selectors import agent_get_for_execution
from config.api.errors import ApiError, Conflict
from doors.common import (
    Parked,
    StreamedAnswer,
    answer_text,
    door_follow,
    door_start,
    door_wait,
    parked,
    parked_from_event,
)
from executions import services
from executions.models import Execution, ExecutionStatus, TriggerType

S = ExecutionStatus
STATES: dict[str, Any] = {
    S.PENDING: pb.TASK_STATE_SUBMITTED,
    S.RUNNING: pb.TASK_STATE_WORKING,
    S.WAITING: pb.TASK_STATE_WORKING,
    S.WAITING_APPROVAL: pb.TASK_STATE_AUTH_REQUIRED,
    S.COMPLETED: pb.TASK_STATE_COMPLETED,
    S.FAILED: pb.TASK_STATE_FAILED,
    S.TIMED_OUT: pb.TASK_STATE_FAILED,
    S.CANCELLED: pb.TASK_STATE_CANCELED,
}
ANSWER = "answer"
MAX_CONTEXT_TURNS = 20


def _agent_message(execution: Execution, text: str, suffix: str = "reply") -> pb.Message:
    return pb.Message(
        message_id=f"{execution.pk}-{suffix}",
        context_id=str((execution.trigger_data or {}).get("context_id", "")),
        task_id=str(execution.pk),
        role=pb.ROLE_AGENT,
        parts=[pb.Part(text=text)],
    )


def _answer_artifact(execution: Execution, text: str) -> pb.Artifact:
    structured = execution.result_text == "" and not (isinstance(execution.output, dict) and "text" in execution.output)
    part = pb.Part(text=text, media_type="application/json") if structured else pb.Part(text=text)
    return pb.Artifact(artifact_id=ANSWER, name=ANSWER, parts=[part])


def _status(execution: Execution, waiting: Parked | None) -> pb.TaskStatus:
    status = pb.TaskStatus(state=STATES[execution.status])
    status.timestamp.FromDatetime(execution.completed_at or execution.started_at or execution.created_at)
    if waiting is not None:
        status.message.CopyFrom(_agent_message(execution, waiting.sentence(), "approval"))
    elif execution.status in (S.FAILED, S.TIMED_OUT):
        reason = f"The run {execution.status}: {execution.error or execution.error_code}"
        status.message.CopyFrom(_agent_message(execution, reason, "error"))
    elif execution.status == S.CANCELLED:
        status.message.CopyFrom(_agent_message(execution, "The run was cancelled.", "cancelled"))
    return status


def task_of(execution: Execution, base_url: str, history_length: int | None = None) -> pb.Task:
    """The execution as an A2A Task, as it is now."""
    waiting = parked(execution, base_url)
    data = execution.trigger_data or {}
    user = pb.Message(
        message_id=str(data.get("message_id") or f"{execution.pk}-task"),
        context_id=str(data.get("context_id", "")),
        task_id=str(execution.pk),
        role=pb.ROLE_USER,
        parts=[pb.Part(text=execution.task)],
    )
    history = [user]
    artifacts = []
    if execution.status == S.COMPLETED:
        text = answer_text(execution)
        history.append(_agent_message(execution, text))
        artifacts.append(_answer_artifact(execution, text))
    if history_length is not None:
        history = history[-history_length:] if history_length else []
    task = pb.Task(
        id=str(execution.pk),
        context_id=str(data.get("context_id", "")),
        status=_status(execution, waiting),
        artifacts=artifacts,
        history=history,
    )
    task.metadata.update({"agentry_execution_id": str(execution.pk), "cost": str(execution.cost)})
    if waiting is not None:
        task.metadata.update({"approval_url": waiting.url, "approval_id": waiting.approval_id})
    return task


def _require(actor: Actor, scope: str, perm: str) -> None:
    if not actor.has_scope(scope):
        raise InvalidRequestError(message=f"The token lacks the {scope!r} scope.", data={"code": "AgentAccessDenied"})
    if not actor.has_perm(perm):
        raise InvalidRequestError(message="Your role does not allow this.", data={"code": "InsufficientPermissions"})


def _a2a_error(error: ApiError) -> Exception:
    # Strings only: the SDK sends data as a google.rpc.ErrorInfo's metadata (a string map).
    data = {"code": error.code, "details": json.dumps(error.details, default=str)}
    if error.status_code >= 500:
        return InternalError(message=error.message, data=data)
    if error.code in ("InvalidInput",):
        return InvalidParamsError(message=error.message, data=data)
    return InvalidRequestError(message=error.message, data=data)


def _task_input(message: pb.Message) -> tuple[str, dict[str, Any]]:
    """Text parts are the task; data parts (JSON objects) the run's context."""
    texts: list[str] = []
    context: dict[str, Any] = {}
    for index, part in enumerate(message.parts):
        kind = part.WhichOneof("content")
        if kind == "text":
            texts.append(part.text)
        elif kind == "data":
            value = MessageToDict(part.data)
            if not isinstance(value, dict):
                raise InvalidParamsError(message=f"Data part {index} must be a JSON object (the run's context).")
            context.update(value)
        else:
            raise InvalidParamsError(message=f"Part {index} is a {kind} part; this agent takes text and data parts.")
    task = "\n".join(t for t in texts if t.strip())
    if not task:
        raise InvalidParamsError(message="The message has no text: its text parts are the agent's task.")
    return task, context


def _context_history(actor: Actor, agent: Agent, context_id: str) -> list[dict[str, str]]:
    earlier = Execution.objects.filter(
        organization=actor.organization,
        agent=agent,
        trigger_type=TriggerType.A2A,
        trigger_data__context_id=context_id,
        status=S.COMPLETED,
    ).order_by("-created_at")[:MAX_CONTEXT_TURNS]
    history: list[dict[str, str]] = []
    for run in reversed(list(earlier)):
        history += [{"role": "user", "content": run.task}, {"role": "assistant", "content": answer_text(run)}]
    return history


def start_task(actor: Actor, agent: Agent, request: pb.SendMessageRequest) -> Execution:
    _require(actor, "agents:execute", "agents.execute_agent")
    message = request.message
    if message.task_id:
        raise UnsupportedOperationError(
            message="Messages to an existing task are not taken: a task waiting for approval is decided by an "
            "approver at its link. Send a new message (with the same contextId to continue the conversation)."
        )
    task, context = _task_input(message)
    context_id = message.context_id or str(uuid.uuid4())
    try:
        runnable = agent_get_for_execution(actor=actor, agent_id=agent.pk)
        execution = door_start(
            actor=actor,
            agent=runnable,
            trigger_type=TriggerType.A2A,
            task=task,
            trigger_data={"context_id": context_id, "message_id": message.message_id},
            context=context,
            history=_context_history(actor, runnable, context_id),
        )
    except ApiError as error:
        raise _a2a_error(error) from None
    return execution


def find_task(actor: Actor, agent: Agent, task_id: str, *, scope: str, perm: str) -> Execution:
    _require(actor, scope, perm)
    try:
        pk = uuid.UUID(task_id)
    except ValueError:
        raise TaskNotFoundError() from None
    execution = (
        Execution.objects.filter(organization=actor.organization, agent=agent, trigger_type=TriggerType.A2A, pk=pk)
        .select_related("agent")
        .first()
    )
    if execution is None:
        raise TaskNotFoundError()
    return execution


def cancel_task(actor: Actor, execution: Execution) -> Execution:
    try:
        return services.execution_cancel(execution=execution, actor=actor)
    except Conflict:
        raise TaskNotCancelableError(message=f"The task is already {execution.status}.") from None


def _state(context: ServerCallContext) -> tuple[Actor, Agent, str]:
    return context.state["agentry_actor"], context.state["agentry_agent"], context.state["agentry_base_url"]


class ExecutionRequestHandler(RequestHandler):
    """The SDK's request handler interface, answered from executions (see the module doc)."""

    async def on_message_send(self, params: pb.SendMessageRequest, context: ServerCallContext) -> pb.Task:
        actor, agent, base = _state(context)
        execution = await sync_to_async(start_task)(actor, agent, params)
        if not params.configuration.return_immediately:
            execution = await sync_to_async(door_wait)(execution)
        return await sync_to_async(task_of)(execution, base)

    async def on_message_send_stream(
        self, params: pb.SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Any]:
        actor, agent, base = _state(context)
        execution = await sync_to_async(start_task)(actor, agent, params)
        yield await sync_to_async(task_of)(execution, base)
        async for event in follow_task(execution, base):
            yield event

    async def on_subscribe_to_task(self, params: pb.SubscribeToTaskRequest, context: ServerCallContext):
        actor, agent, base = _state(context)
        execution = await sync_to_async(find_task)(
            actor, agent, params.id, scope="agents:read", perm="executions.view_execution"
        )
        yield await sync_to_async(task_of)(execution, base)
        if not execution.is_terminal and execution.status != S.WAITING_APPROVAL:
            async for event in follow_task(execution, base):
                yield event

    async def on_get_task(self, params: pb.GetTaskRequest, context: ServerCallContext) -> pb.Task | None:
        actor, agent, base = _state(context)
        execution = await sync_to_async(find_task)(
            actor, agent, params.id, scope="agents:read", perm="executions.view_execution"
        )
        length = params.history_length if params.HasField("history_length") else None
        return await sync_to_async(task_of)(execution, base, length)

    async def on_cancel_task(self, params: pb.CancelTaskRequest, context: ServerCallContext) -> pb.Task | None:
        actor, agent, base = _state(context)
        execution = await sync_to_async(find_task)(
            actor, agent, params.id, scope="agents:execute", perm="executions.cancel_execution"
        )
        execution = await sync_to_async(cancel_task)(actor, execution)
        return await sync_to_async(task_of)(execution, base)

    async def on_list_tasks(self, params: Any, context: ServerCallContext) -> Any:
        raise UnsupportedOperationError(message="Listing tasks is not offered; GET /api/v1/executions/ lists runs.")

    async def on_create_task_push_notification_config(self, params: Any, context: ServerCallContext) -> Any:
        raise UnsupportedOperationError(message="Push notifications are not offered (see the agent card).")

    async def on_get_task_push_notification_config(self, params: Any, context: ServerCallContext) -> Any:
        raise UnsupportedOperationError(message="Push notifications are not offered (see the agent card).")

    async def on_list_task_push_notification_configs(self, params: Any, context: ServerCallContext) -> Any:
        raise UnsupportedOperationError(message="Push notifications are not offered (see the agent card).")

    async def on_delete_task_push_notification_config(self, params: Any, context: ServerCallContext) -> None:
        raise UnsupportedOperationError(message="Push notifications are not offered (see the agent card).")

    async def on_get_extended_agent_card(self, params: Any, context: ServerCallContext) -> Any:
        raise UnsupportedOperationError(message="There is no extended card; the card at the well-known path is all.")


def _status_event(execution: Execution, state: Any, message: pb.Message | None = None) -> pb.TaskStatusUpdateEvent:
    status = pb.TaskStatus(state=state)
    if message is not None:
        status.message.CopyFrom(message)
    return pb.TaskStatusUpdateEvent(
        task_id=str(execution.pk), context_id=str((execution.trigger_data or {}).get("context_id", "")), status=status
    )


def _chunk(execution: Execution, text: str, *, append: bool, last: bool) -> pb.TaskArtifactUpdateEvent:
    return pb.TaskArtifactUpdateEvent(
        task_id=str(execution.pk),
        context_id=str((execution.trigger_data or {}).get("context_id", "")),
        artifact=pb.Artifact(artifact_id=ANSWER, name=ANSWER, parts=[pb.Part(text=text)]),
        append=append,
        last_chunk=last,
    )


async def follow_task(execution: Execution, base_url: str) -> AsyncGenerator[Any]:
    """Status and artifact updates of a running task until it ends or waits for approval."""
    streamed = StreamedAnswer()
    working = False
    async for item in door_follow(execution.pk):
        if item.kind == "status" and item.data.get("status") == S.RUNNING and not working:
            working = True
            yield _status_event(execution, pb.TASK_STATE_WORKING)
        elif item.kind == "delta" and item.text:
            yield _chunk(execution, item.text, append=streamed.add(item), last=False)
        elif item.kind == "parked":
            waiting = parked_from_event(item.data, base_url)
            message = _agent_message(execution, waiting.sentence(), "approval")
            yield _status_event(execution, pb.TASK_STATE_AUTH_REQUIRED, message)
            return
        elif item.kind == "end":
            await sync_to_async(execution.refresh_from_db)()
            if execution.status == S.COMPLETED:
                text = answer_text(execution)
                rest = streamed.rest(text)
                if streamed.text and rest is not None:
                    yield _chunk(execution, rest, append=True, last=True)
                else:
                    yield pb.TaskArtifactUpdateEvent(
                        task_id=str(execution.pk),
                        context_id=str((execution.trigger_data or {}).get("context_id", "")),
                        artifact=_answer_artifact(execution, text),
                        append=False,
                        last_chunk=True,
                    )
                yield _status_event(execution, pb.TASK_STATE_COMPLETED, _agent_message(execution, text))
            else:
                task = await sync_to_async(task_of)(execution, base_url)
                yield pb.TaskStatusUpdateEvent(task_id=task.id, context_id=task.context_id, status=task.status)
            return
