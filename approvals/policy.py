"""When a tool call must wait for a person (reference: ApprovalManager.needsApproval).

In this order, as the reference has it:
1. the tool is dangerous;
2. one of the agent's constraints holds it back: a structured constraint lists tool names or
   patterns (``{"text": …, "requires_approval_for": ["email_*"]}``); a plain sentence that
   asks for approval ("never send emails without approval") is read for the tools it names
   (explicit names and patterns, or the words in ``KEYWORD_PATTERNS``);
3. the risk rules rate it high or critical: the organization's own rules first, then the
   defaults below, first match wins (``assess_risk`` follows the reference's assessRisk:
   a rule with a count threshold that is not reached still gives its base level).
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

from approvals.models import RISK_ORDER, RiskLevel, RiskRule

DEFAULT_RISK_RULES: tuple[dict[str, Any], ...] = (
    {
        "pattern": "email_send",
        "risk_level": RiskLevel.HIGH,
        "count_field": "to",
        "count_threshold": 10,
        "threshold_risk_level": RiskLevel.CRITICAL,
        "source": "default rule: every email sent is high risk, 10 or more recipients critical",
    },
    {"pattern": "crm_delete_*", "risk_level": RiskLevel.CRITICAL, "source": "default rule: deleting CRM data"},
    {"pattern": "data_export", "risk_level": RiskLevel.HIGH, "source": "default rule: exporting data"},
    {"pattern": "settings_*", "risk_level": RiskLevel.MEDIUM, "source": "default rule: changing settings"},
)
NEEDS_APPROVAL = frozenset({RiskLevel.HIGH, RiskLevel.CRITICAL})

_ASKS_APPROVAL = re.compile(
    r"approv|confirm|sign[- ]?off|human review|human (?:check|ok)|permission|ask (?:a human|a person|me|first|before)",
    re.IGNORECASE,
)
_TOOL_NAME = re.compile(r"(?<![\w*])[a-z][a-z0-9]*(?:_(?:[a-z0-9]+|\*))+(?![\w*])")
# Words of a plain-language constraint -> the tools they mean.
KEYWORD_PATTERNS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(words, re.IGNORECASE), patterns)
    for words, patterns in (
        (r"\be-?mails?\b", ("email_*",)),
        (r"\bsms\b|\btext messages?\b", ("notify_user",)),
        (r"\bnotif", ("notify_user",)),
        (r"\bdelet|\bremov", ("*_delete_*",)),
        (r"\bcontacts?\b|\bcrm\b", ("crm_*",)),
        (r"\bcalendar|\bmeetings?\b|\bevents?\b|\bbook", ("calendar_*",)),
        (r"\btasks?\b", ("task_*",)),
        (r"\bworkflows?\b|\bother agents?\b", ("trigger_workflow",)),
        (r"\bexport", ("data_export",)),
        (r"\bscrap|\bbrows|\bweb\b|\binternet\b", ("web_*",)),
        (r"\bsettings?\b", ("settings_*",)),
    )
)


def constraint_patterns(constraint: Any) -> list[str]:
    """The tool patterns a constraint holds back for approval (empty: it holds none)."""
    if isinstance(constraint, dict):
        return [str(p) for p in constraint.get("requires_approval_for") or []]
    if not isinstance(constraint, str) or not _ASKS_APPROVAL.search(constraint):
        return []
    patterns = [m.group(0) for m in _TOOL_NAME.finditer(constraint.lower())]
    for words, mapped in KEYWORD_PATTERNS:
        if words.search(constraint):
            patterns.extend(mapped)
    return list(dict.fromkeys(patterns))


def constraint_text(constraint: Any) -> str:
    return constraint.get("text", "") if isinstance(constraint, dict) else str(constraint)


def _matches(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


def organization_rules(organization_id: Any) -> list[dict[str, Any]]:
    return [r.as_rule() for r in RiskRule.objects.filter(organization_id=organization_id, is_active=True)]


def assess_risk(name: str, arguments: dict[str, Any], rules: list[dict[str, Any]]) -> tuple[str, str]:
    """(risk level, which rule said so) for calling ``name`` with ``arguments``."""
    for rule in [*rules, *DEFAULT_RISK_RULES]:
        if not _matches(rule["pattern"], name):
            continue
        field, threshold = rule.get("count_field"), rule.get("count_threshold")
        value = arguments.get(field) if field else None
        if field and threshold and isinstance(value, list) and len(value) >= threshold:
            level = rule.get("threshold_risk_level") or rule["risk_level"]
            return str(level), f"{rule['source']} ({len(value)} {field})"
        return str(rule["risk_level"]), str(rule["source"])
    return RiskLevel.LOW.value, "no risk rule matches"


def describe_action(name: str, arguments: dict[str, Any]) -> str:
    """One line a person reads to know what they are approving."""
    if name == "email_send":
        to = arguments.get("to") or []
        shown = ", ".join(map(str, to[:5])) + (f" and {len(to) - 5} more" if len(to) > 5 else "")
        return f"Send an email to {shown}: “{arguments.get('subject', '')}”"
    if name == "notify_user":
        channel = arguments.get("channel") or "in_app"
        target = arguments.get("phone") or arguments.get("user_id") or "the run's requester"
        return f"Notify {target} by {channel}: “{str(arguments.get('message', ''))[:120]}”"
    if name.startswith("crm_delete_"):
        return f"Delete CRM record {arguments.get('contact_id') or arguments}"
    text = json.dumps(arguments, ensure_ascii=False, default=str)
    return f"Call {name} with {text[:300]}{'…' if len(text) > 300 else ''}"


def approval_requirement(
    *,
    organization_id: Any,
    name: str,
    is_dangerous: bool,
    arguments: dict[str, Any],
    config: dict[str, Any],
    rules: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """None when the call may go ahead; else what the approval request records.

    ``rules``: the organization's risk rules when the caller has them already."""
    if rules is None:
        rules = organization_rules(organization_id)
    risk, risk_source = assess_risk(name, arguments, rules)
    reason = None
    if is_dangerous:
        reason = "Tool marked as dangerous"
        # A dangerous tool is never shown to a person as low risk.
        if RISK_ORDER[RiskLevel(risk)] < RISK_ORDER[RiskLevel.HIGH]:
            risk = RiskLevel.HIGH.value
    if reason is None:
        for constraint in config.get("constraints") or []:
            if any(_matches(p, name) for p in constraint_patterns(constraint)):
                reason = f"Agent constraint: {constraint_text(constraint)}"
                break
    if reason is None and risk in NEEDS_APPROVAL:
        reason = f"Risk level: {risk} ({risk_source})"
    if reason is None:
        return None
    return {
        "tool": name,
        "risk_level": risk,
        "reason": reason,
        "risk_source": risk_source,
        "description": describe_action(name, arguments),
    }
