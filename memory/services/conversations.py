"""Short-term memory: the conversation a run continues (``conversation_id`` on execute).

A caller picks a conversation id (a UUID) and passes it with each turn; the first finished run
with that id starts the conversation, the next runs get its last messages as history, within
MEMORY_HISTORY_MAX_MESSAGES and MEMORY_HISTORY_MAX_TOKENS (oldest dropped first; the system
prompt is built apart and never dropped). An id is one agent's in one organization: a run of
another agent, another organization or another user never reads or writes it.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.access import Actor
from accounts.services import activity_record
from memory.chunking import estimate_tokens
from memory.models import ContextType, Conversation
from memory.services.common import run_subject

logger = logging.getLogger(__name__)


def conversation_context(execution: Any) -> tuple[str, str]:
    """(context_type, context_id) of a run: its user, else the entity it is about, else the
    session (the conversation itself)."""
    context = execution.input.get("context") or {}
    subject = run_subject(context)
    if subject is not None and subject.type == "user":
        return ContextType.USER, subject.id
    if subject is not None:
        return ContextType.ENTITY, f"{subject.type}:{subject.id}"[:200]
    return ContextType.SESSION, str(execution.conversation_id)


def _usable(conversation: Conversation, execution: Any) -> bool:
    """The conversation is this run's: same agent and organization, same user or entity."""
    if conversation.agent_id != execution.agent_id or conversation.organization_id != execution.organization_id:
        return False
    if conversation.context_type == ContextType.SESSION:
        return True
    return (conversation.context_type, conversation.context_id) == conversation_context(execution)


def history_window(messages: list[dict[str, Any]], *, max_messages: int, max_tokens: int) -> list[dict[str, str]]:
    """The newest messages that fit both limits, in order. The window never starts with an
    assistant turn (some providers refuse a conversation that does)."""
    window: list[dict[str, Any]] = []
    used = 0
    for message in reversed(messages):
        tokens = int(message.get("tokens") or estimate_tokens(str(message.get("content", ""))))
        if len(window) >= max_messages or used + tokens > max_tokens:
            break
        window.append(message)
        used += tokens
    window.reverse()
    while window and window[0].get("role") != "user":
        window.pop(0)
    return [{"role": m["role"], "content": str(m.get("content", ""))} for m in window]


def conversation_history_for(*, execution: Any, config: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Earlier turns of the run's conversation, within the agent's window (its ``memory``
    settings, else the platform's)."""
    window = (config or {}).get("memory") or {}
    if not execution.conversation_id:
        return []
    conversation = Conversation.objects.filter(pk=execution.conversation_id).first()
    if conversation is None:
        return []
    if not _usable(conversation, execution):
        logger.warning("execution %s may not continue conversation %s", execution.pk, conversation.pk)
        return []
    if conversation.expires_at is not None and conversation.expires_at <= timezone.now():
        return []
    return history_window(
        list(conversation.messages or []),
        max_messages=window.get("max_history", settings.MEMORY_HISTORY_MAX_MESSAGES),
        max_tokens=window.get("context_window", settings.MEMORY_HISTORY_MAX_TOKENS),
    )


def _answer_text(execution: Any) -> str:
    if execution.result_text:
        return execution.result_text
    if execution.output is None:
        return ""
    output = execution.output
    if isinstance(output, dict) and set(output) == {"text"}:
        return str(output["text"])
    return json.dumps(output, default=str)


def conversation_append(*, execution: Any) -> Conversation | None:
    """Add the run's task and answer to its conversation (creating it on first use).

    Idempotent: a run already in the conversation is not added twice. Only completed runs
    are added: a failed turn would teach the model an answer that was never given.
    """
    if not execution.conversation_id or execution.status != "completed":
        return None
    now = timezone.now()
    context_type, context_id = conversation_context(execution)
    marker = str(execution.pk)
    question, answer = execution.task, _answer_text(execution)
    new_messages = [
        {
            "role": "user",
            "content": question,
            "tokens": estimate_tokens(question),
            "execution_id": marker,
            "at": now.isoformat(),
        },
        {
            "role": "assistant",
            "content": answer,
            "tokens": estimate_tokens(answer),
            "execution_id": marker,
            "at": now.isoformat(),
        },
    ]
    expires_at = now + timedelta(hours=settings.MEMORY_CONVERSATION_TTL_HOURS)
    for _attempt in range(2):
        try:
            with transaction.atomic():
                conversation = Conversation.objects.select_for_update().filter(pk=execution.conversation_id).first()
                if conversation is None:
                    return Conversation.objects.create(
                        id=execution.conversation_id,
                        organization_id=execution.organization_id,
                        agent_id=execution.agent_id,
                        context_type=context_type,
                        context_id=context_id,
                        messages=new_messages,
                        message_count=2,
                        tokens_used=sum(m["tokens"] for m in new_messages),
                        started_at=now,
                        last_message_at=now,
                        expires_at=expires_at,
                    )
                if not _usable(conversation, execution):
                    logger.warning(
                        "conversation %s belongs to another agent, organization or user; run %s not recorded",
                        conversation.pk,
                        execution.pk,
                    )
                    return None
                if any(m.get("execution_id") == marker for m in conversation.messages[-4:]):
                    return conversation
                # An expired conversation not yet deleted starts over: its turns were no
                # longer shown to the model, so they must not come back.
                kept = [] if conversation.expires_at and conversation.expires_at <= now else list(conversation.messages)
                messages = (kept + new_messages)[-settings.MEMORY_CONVERSATION_MAX_MESSAGES :]
                conversation.messages = messages
                conversation.message_count += 2
                conversation.tokens_used = sum(int(m.get("tokens") or 0) for m in messages)
                conversation.last_message_at = now
                conversation.expires_at = expires_at
                conversation.save(
                    update_fields=["messages", "message_count", "tokens_used", "last_message_at", "expires_at"]
                )
                return conversation
        except IntegrityError:
            continue  # two first turns at once: the other created it; append to it
    return None


def conversation_delete(*, conversation: Conversation, actor: Actor | None = None) -> None:
    with transaction.atomic():
        if actor is not None:
            activity_record(
                organization=actor.organization,
                actor=actor,
                action="conversation.deleted",
                agent_id=conversation.agent_id,
                target=conversation,
            )
        conversation.delete()


def conversations_expire(*, dry_run: bool = False, now: Any = None) -> int:
    """Delete conversations past their expiry; returns how many (would be) deleted."""
    expired = Conversation.objects.filter(expires_at__isnull=False, expires_at__lte=now or timezone.now())
    if dry_run:
        return expired.count()
    deleted, _ = expired.delete()
    return deleted
