"""Chains: define, change, delete. Chain *definitions* are agent configuration.

Running them (starting, advancing, cancelling chain executions) is ``executions.chains``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower

from accounts.services import activity_record
from agents.models import AgentChain, ChainRunStatus
from agents.validation.chains import chain_definition_validate
from billing.quotas import plan_feature_require
from config.api.errors import Conflict, InvalidInput, NotFound

FIELDS = ("name", "description", "status", "steps", "error_handling", "retry_policy", "timeout_seconds")


def _check_keys(data: dict[str, Any]) -> None:
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput("The chain is invalid.", validation_errors={key: ["Unknown field."] for key in unknown})


def _ensure_name_free(organization_id: Any, name: str, exclude_pk: Any = None) -> None:
    qs = (
        AgentChain.objects.filter(organization_id=organization_id)
        .annotate(lower=Lower("name"))
        .filter(lower=name.lower())
    )
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    if qs.exists():
        raise InvalidInput("The chain is invalid.", validation_errors={"name": [f"A chain named {name!r} exists."]})


def chain_as_data(chain: AgentChain) -> dict[str, Any]:
    return {field: getattr(chain, field) for field in FIELDS}


def _record(actor: Any, chain: AgentChain, action: str, by_user: Any = None, summary: dict | None = None) -> None:
    activity_record(
        organization=chain.organization,
        actor=actor,
        user=by_user,
        action=action,
        target=chain,
        request_summary=summary or {},
    )


@transaction.atomic
def chain_create(*, actor: Any, data: dict[str, Any], organization: Any = None, by_user: Any = None) -> AgentChain:
    """Validate the whole definition (agents, mappings, cycles) and save it."""
    _check_keys(data)
    organization = actor.organization if actor is not None else organization
    plan_feature_require(organization=organization, feature="chains", user=actor.user if actor is not None else by_user)
    clean = chain_definition_validate(data, organization_id=organization.pk, actor=actor)
    _ensure_name_free(organization.pk, clean["name"])
    user = actor.user if actor is not None else by_user
    try:
        with transaction.atomic():
            chain = AgentChain.objects.create(organization=organization, created_by=user, updated_by=user, **clean)
    except IntegrityError as exc:  # a concurrent create took the name
        raise InvalidInput("The chain is invalid.", validation_errors={"name": ["This name is taken."]}) from exc
    _record(actor, chain, "chain.created", by_user, {"name": chain.name, "steps": len(chain.steps)})
    return chain


@transaction.atomic
def chain_update(*, actor: Any, chain: AgentChain, data: dict[str, Any], by_user: Any = None) -> AgentChain:
    """Change any fields; the result is validated as a whole. Runs in flight keep the
    definition they started with."""
    _check_keys(data)
    chain = AgentChain.objects.select_for_update().get(pk=chain.pk)
    merged = {**chain_as_data(chain), **data}
    clean = chain_definition_validate(merged, organization_id=chain.organization_id, actor=actor)
    if clean["name"].lower() != chain.name.lower():
        _ensure_name_free(chain.organization_id, clean["name"], exclude_pk=chain.pk)
    changed = [key for key, value in clean.items() if getattr(chain, key) != value]
    for key in changed:
        setattr(chain, key, clean[key])
    if changed:
        chain.updated_by = actor.user if actor is not None else by_user
        chain.save(update_fields=[*changed, "updated_by", "updated_at"])
        _record(actor, chain, "chain.updated", by_user, {"changes": changed})
    return chain


@transaction.atomic
def chain_delete(*, actor: Any, chain: AgentChain, by_user: Any = None) -> None:
    if chain.executions.filter(status__in=[ChainRunStatus.PENDING, ChainRunStatus.RUNNING]).exists():
        raise Conflict("The chain has executions in flight; cancel them first.")
    _record(actor, chain, "chain.deleted", by_user, {"name": chain.name})
    chain.delete()


def chain_for_organization(*, organization_id: Any, ref: str) -> AgentChain:
    """A chain of the organization by id or (case-insensitive) name."""
    try:
        match = Q(pk=uuid.UUID(str(ref)))
    except ValueError:
        match = Q(name__iexact=str(ref))
    chain = AgentChain.objects.filter(match, organization_id=organization_id).first()
    if chain is None:
        raise NotFound(f"No chain {ref!r} in this organization.", details={"chain_id": str(ref)})
    return chain
