"""The approval policy reaches the tool gateway through a registration (approvals sit above tools)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from approvals.policy import approval_requirement, organization_rules
from approvals.selectors import risk_rules_subquery
from tools import approval_policy as registry


def test_the_approvals_app_registers_its_policy():
    policy = registry.approval_policy()
    assert policy.requirement is approval_requirement
    assert policy.organization_rules is organization_rules
    assert policy.rules_subquery is risk_rules_subquery


def test_without_a_policy_nothing_is_checked_as_allowed(monkeypatch):
    # Fail closed: a missing registration is an error, never "no approval needed".
    monkeypatch.setattr(registry, "_policy", None)
    with pytest.raises(ImproperlyConfigured):
        registry.approval_policy()
