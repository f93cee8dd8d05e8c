"""Recording what LLM calls cost, per organization, agent, execution and model."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billing.models import UsageRecord


def usage_record_llm_call(
    *, execution: Any, step: Any = None, provider: str, model: str, usage: Any, cost: Decimal, purpose: str = "run"
) -> UsageRecord:
    """Call inside the transaction that commits the step (so the two agree)."""
    return UsageRecord.objects.create(
        organization_id=execution.organization_id,
        agent_id=execution.agent_id,
        execution_id=execution.pk,
        user_id=execution.triggered_by_user_id,
        purpose=purpose,
        provider=provider,
        model=model,
        tokens_input=usage.input_tokens,
        tokens_output=usage.output_tokens,
        tokens_cached=usage.cached_input_tokens,
        cost=cost,
    )
