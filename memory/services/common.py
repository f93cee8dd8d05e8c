"""Helpers the memory services share: usage records for embedding calls, a run's subject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import Organization
from billing.usage import usage_record_llm_call
from executions.llm.base import Usage
from memory.embedders import EmbeddingBatch
from memory.selectors import Subject, subject_id_value


@dataclass
class UsageOwner:
    """Who an LLM or embedding call is billed to when no execution made it (an API call, a
    knowledge-base upload, a re-embedding): the attributes ``usage_record_llm_call`` reads."""

    organization: Any
    agent_id: Any = None
    pk: Any = None  # no execution
    triggered_by_user_id: Any = None

    @property
    def organization_id(self) -> Any:
        return self.organization.pk

    @classmethod
    def for_organization_id(cls, organization_id: Any, **kwargs: Any) -> UsageOwner:
        return cls(organization=Organization.objects.get(pk=organization_id), **kwargs)


def record_embedding_usage(*, owner: Any, batch: EmbeddingBatch) -> None:
    """A UsageRecord (purpose "embedding") for a paid embedding call; the local model is free
    and not recorded. Call inside the transaction that stores the vectors."""
    if batch.provider == "local" or (not batch.input_tokens and not batch.cost):
        return

    usage_record_llm_call(
        execution=owner,
        provider=batch.provider,
        model=batch.api_model,
        usage=Usage(input_tokens=batch.input_tokens, total=batch.input_tokens),
        cost=batch.cost,
        purpose="embedding",
    )


def run_subject(context: Any) -> Subject | None:
    """The subject a run is about, from its input context: ``subject_type`` + ``subject_id``,
    else ``user_id`` (subject type "user"). Memories learned in that run are scoped to it, and
    only it (plus the agent-wide memories) is retrieved for it."""
    if not isinstance(context, dict):
        return None
    kind, ident = context.get("subject_type"), context.get("subject_id")
    if isinstance(kind, str) and kind.strip() and ident not in (None, ""):
        return Subject(kind.strip()[:60], subject_id_value(ident))
    user = context.get("user_id")
    if user not in (None, "") and not isinstance(user, (dict, list)):
        return Subject("user", subject_id_value(user))
    return None
