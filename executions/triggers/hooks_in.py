"""Webhooks in: ``POST hooks/{agent_id}/`` signed with the agent's secret starts one run.

The request must carry ``X-Agentry-Timestamp`` and ``X-Agentry-Signature: sha256=<hmac>``
over ``"<timestamp>." + body`` (executions.triggers.signing). Against replay: the timestamp
must be within ``AGENTRY_HOOK_TOLERANCE_SECONDS`` of now, a signature is accepted once
(remembered in Redis for twice that long), and the run's idempotency key is derived from the
signature, so even a forgotten signature never starts a second run.

The JSON body is the run's input: ``{"task": "…", "context": {…}}`` when it has a ``task``,
else the whole body is the context. The agent's trigger_conditions apply to it as
``payload``.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from accounts.access import Actor
from accounts.services import activity_record
from agents.models import Agent
from agents.selectors import agent_effective_config
from agents.triggers.conditions import ConditionError, trigger_conditions_hold
from config.api.errors import ApiError, Conflict, ResourceExhausted
from config.api.json_input import JsonInputError, json_loads_bounded
from config.api.parsers import invalid_json_input
from executions.models import AgentHookSecret, Execution, TriggerAttempt, TriggerType
from executions.triggers.common import trigger_agents, trigger_start
from executions.triggers.signing import secret_generate, signature_problem

DEFAULT_TOLERANCE_SECONDS = 300


def tolerance_seconds() -> int:
    return int(getattr(settings, "AGENTRY_HOOK_TOLERANCE_SECONDS", DEFAULT_TOLERANCE_SECONDS))


@transaction.atomic
def hook_secret_rotate(*, actor: Actor | None, agent: Agent, by_user: Any = None) -> tuple[AgentHookSecret, str]:
    """Make (or replace) the agent's hook secret; the clear value is returned this once."""
    if agent.organization_id is None:
        raise Conflict("Platform agents have no inbound webhook.")
    raw = secret_generate("whsec")
    hook, _ = AgentHookSecret.objects.update_or_create(  # type: ignore[misc]
        agent=agent,
        defaults={
            "organization_id": agent.organization_id,
            "secret": raw,
            "secret_last4": raw[-4:],
            "created_by": actor.user if actor is not None else by_user,
        },
    )
    activity_record(
        organization=agent.organization,  # type: ignore[arg-type]
        actor=actor,
        user=by_user,
        action="agent.hook_secret_rotated",
        target=agent,
        agent_id=agent.pk,
    )
    return hook, raw


@dataclass
class HookResult:
    execution: Execution | None = None
    created: bool = False
    conditions_met: bool = True


def _not_found() -> ApiError:
    # Same answer for an unknown agent, another organization's and one without a secret.
    return ApiError(code="AgentNotFound", message="No webhook here.")


def hook_receive(*, agent_id: str, body: bytes, signature: str | None, timestamp: str | None) -> HookResult:
    """Check the signature, then start the agent; raises ApiError with a 4xx otherwise."""
    try:
        pk = uuid.UUID(str(agent_id))
    except ValueError:
        raise _not_found() from None
    hook = AgentHookSecret.objects.filter(agent_id=pk).select_related("agent", "organization").first()
    if hook is None or hook.agent.deleted_at is not None:
        raise _not_found()
    tolerance = tolerance_seconds()
    problem = signature_problem(
        secret=hook.secret, signature=signature, timestamp=timestamp, body=body, now=time.time(), tolerance=tolerance
    )
    if problem is not None:
        raise ApiError(code=problem[0], message=problem[1])
    digest = hashlib.sha256((signature or "").strip().encode()).hexdigest()
    # A signature is good once: the window is twice the tolerance, so a timestamp still
    # accepted can never outlive the memory of its signature.
    if not cache.add(f"agentry:hook-seen:{pk}:{digest}", 1, timeout=2 * tolerance):
        raise Conflict("This request was already received (replayed signature).")
    try:
        body_json = json_loads_bounded(body or b"{}")
    except JsonInputError as refused:
        raise invalid_json_input(refused) from None
    except ValueError:
        body_json = None
    if not isinstance(body_json, dict):
        raise ApiError(code="InvalidInput", message="The body must be a JSON object.")
    agent = trigger_agents(organization=hook.organization).filter(pk=pk).first()
    if agent is None:
        raise Conflict(
            "The agent is not active or has no published version; webhooks cannot start it.",
            details={"agent_id": str(pk)},
        )
    return _start(agent=agent, organization=hook.organization, body=body_json, digest=digest)


def _start(*, agent: Agent, organization: Any, body: dict[str, Any], digest: str) -> HookResult:
    assert agent.current_version is not None
    config = agent_effective_config(version=agent.current_version, organization=organization)
    data = {"event": {"type": "webhook"}, "payload": body}
    try:
        holds = trigger_conditions_hold(config.get("trigger_conditions") or {}, data)
    except ConditionError:
        holds = False
    if not holds:
        return HookResult(conditions_met=False)
    if isinstance(body.get("task"), str) and body["task"].strip():
        task, context = body["task"], body.get("context", {})
    else:
        task, context = f"A webhook call reached {agent.name}; its body is the context.", body
    execution, created, attempt = trigger_start(
        agent=agent,
        organization=organization,
        trigger_type=TriggerType.WEBHOOK,
        task=task,
        context=context if isinstance(context, dict) else {"context": context},
        trigger_data={"signature_sha256": digest[:16]},
        idempotency_key=f"hook:{agent.pk}:{digest[:40]}",
    )
    if attempt is not None:
        raise _refusal(attempt)
    return HookResult(execution=execution, created=created)


def _refusal(attempt: TriggerAttempt) -> ApiError:
    details = {**attempt.details, "attempt_id": str(attempt.pk)}
    if attempt.code == "ResourceExhausted":
        return ResourceExhausted(attempt.message, details=details)
    return ApiError(code=attempt.code, message=attempt.message, details=details)
