"""The approval policy: dangerous tools, constraints, risk rules (reference assessRisk)."""

from __future__ import annotations

import pytest

from approvals.models import RiskRule
from approvals.policy import approval_requirement, assess_risk, constraint_patterns


@pytest.mark.parametrize(
    ("name", "arguments", "level"),
    [
        ("email_send", {"to": ["a@x.test"]}, "high"),  # every email sent is high risk
        ("email_send", {"to": [f"{i}@x.test" for i in range(9)]}, "high"),
        ("email_send", {"to": [f"{i}@x.test" for i in range(10)]}, "critical"),  # 10 or more
        ("crm_delete_contact", {}, "critical"),
        ("crm_delete_deal", {}, "critical"),
        ("data_export", {"entity_type": "tasks"}, "high"),
        ("settings_update", {}, "medium"),
        ("email_draft", {"to": [f"{i}@x.test" for i in range(50)]}, "low"),
        ("wait", {"seconds": 5}, "low"),
    ],
)
def test_default_risk_rules(name, arguments, level):
    assert assess_risk(name, arguments, [])[0] == level


@pytest.mark.parametrize(
    ("constraint", "patterns"),
    [
        ("Never send emails without approval", ["email_*"]),
        ("Ask a human before deleting contacts", ["*_delete_*", "crm_*"]),
        ("Get approval before any crm_update_contact or task_*", ["crm_update_contact", "task_*"]),
        ("SMS messages need human sign-off", ["notify_user"]),
        ("Be polite and concise", []),
        ("Emails should be short", []),  # names a tool but asks for no approval
        ({"text": "Deals need a manager", "requires_approval_for": ["crm_*_deal"]}, ["crm_*_deal"]),
        ({"text": "Be nice"}, []),
    ],
)
def test_constraints_name_the_tools_they_hold_back(constraint, patterns):
    assert set(constraint_patterns(constraint)) == set(patterns)


def test_why_a_call_waits_in_the_reference_order():
    base = {"organization_id": None, "arguments": {}, "config": {}, "rules": []}
    dangerous = approval_requirement(name="crm_delete_contact", is_dangerous=True, **base)
    assert dangerous["reason"] == "Tool marked as dangerous" and dangerous["risk_level"] == "critical"
    # A dangerous tool is never presented as low risk.
    assert approval_requirement(name="purge", is_dangerous=True, **base)["risk_level"] == "high"
    config = {"constraints": ["Never create tasks without approval"]}
    held = approval_requirement(name="task_create", is_dangerous=False, **{**base, "config": config})
    assert held["reason"] == "Agent constraint: Never create tasks without approval" and held["risk_level"] == "low"
    risky = approval_requirement(name="data_export", is_dangerous=False, **base)
    assert risky["reason"].startswith("Risk level: high") and "data_export" in risky["description"]
    assert approval_requirement(name="task_create", is_dangerous=False, **base) is None
    assert approval_requirement(name="settings_update", is_dangerous=False, **base) is None  # medium goes ahead


def test_email_descriptions_say_who_gets_it():
    held = approval_requirement(
        organization_id=None,
        name="email_send",
        is_dangerous=False,
        arguments={"to": [f"{i}@x.test" for i in range(12)], "subject": "Sale", "body": "b"},
        config={},
        rules=[],
    )
    assert held["risk_level"] == "critical"
    assert held["description"] == "Send an email to 0@x.test, 1@x.test, 2@x.test, 3@x.test, 4@x.test and 7 more: “Sale”"


@pytest.mark.django_db
def test_an_organizations_rules_come_first(org, other_org):
    RiskRule.objects.create(organization=org, pattern="email_send", risk_level="low")
    RiskRule.objects.create(organization=org, pattern="task_*", risk_level="high", position=1)
    RiskRule.objects.create(
        organization=org, pattern="notify_user", risk_level="medium", count_field="to", count_threshold=3,
        threshold_risk_level="critical", position=2,
    )  # fmt: skip
    RiskRule.objects.create(organization=other_org, pattern="wait", risk_level="critical")
    common = {"organization_id": org.pk, "is_dangerous": False, "config": {}}
    assert approval_requirement(name="email_send", arguments={"to": ["a@x.test"]}, **common) is None
    assert approval_requirement(name="task_create", arguments={}, **common)["risk_level"] == "high"
    assert approval_requirement(name="notify_user", arguments={"to": [1, 2]}, **common) is None
    assert approval_requirement(name="notify_user", arguments={"to": [1, 2, 3]}, **common)["risk_level"] == "critical"
    assert approval_requirement(name="wait", arguments={}, **common) is None  # another organization's rule
    assert approval_requirement(name="data_export", arguments={}, **common)["risk_level"] == "high"  # default
