"""The approval policy the tool gateway asks, registered by the approvals app.

Approvals sit above tools (they read tool calls, resume held ones), so tools never import
them: ``approvals/apps.py`` registers its policy here in ``ready()``. Without it no tool view
is built and no call is checked (``ImproperlyConfigured``): calls never run unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class ApprovalPolicy:
    # organization_id= -> a query expression: the organization's active rules as a JSON array
    rules_subquery: Callable[..., Any]
    # organization_id -> the same rules as a list of dicts (when there is no tool row to annotate)
    organization_rules: Callable[[Any], list[dict[str, Any]]]
    # organization_id=, name=, is_dangerous=, arguments=, config=, rules= -> the approval to ask for, or None
    requirement: Callable[..., Any]


_policy: ApprovalPolicy | None = None


def approval_policy_set(policy: ApprovalPolicy | None) -> None:
    global _policy
    _policy = policy


def approval_policy() -> ApprovalPolicy:
    if _policy is None:
        raise ImproperlyConfigured("No approval policy is registered (the approvals app does it in its ready()).")
    return _policy
