"""From an agent configuration to the text and turns the model sees.

The runtime calls ``render_system_prompt(config)`` with ``agent_version_config(version)``
and appends the tool list and the relevant memories itself (DESIGN.md §5, step 2);
``few_shot_messages(config)`` gives the examples as alternating user/assistant turns.
"""

from __future__ import annotations

from typing import Any

from agents.models import AgentType, GoalComparison

_COMPARISON_WORDS: dict[str, str] = {
    GoalComparison.GT: "above",
    GoalComparison.GTE: "at least",
    GoalComparison.LT: "below",
    GoalComparison.LTE: "at most",
    GoalComparison.EQ: "exactly",
}


def _sentence(label: str, text: str) -> str:
    return f"{label}: {text.strip().rstrip('.')}."


def render_personality(personality: Any) -> str:
    """Free text as written; structured traits/tone/behavior/language_style as short lines."""
    if not personality:
        return ""
    if isinstance(personality, str):
        return personality.strip()
    lines = []
    if personality.get("description"):
        lines.append(personality["description"].strip())
    if personality.get("traits"):
        lines.append(_sentence("Traits", ", ".join(personality["traits"])))
    if personality.get("tone"):
        lines.append(_sentence("Tone", personality["tone"]))
    behavior = personality.get("behavior")
    if behavior:
        lines.append(_sentence("Behavior", "; ".join(behavior) if isinstance(behavior, list) else behavior))
    if personality.get("language_style"):
        lines.append(_sentence("Language style", personality["language_style"]))
    return "\n".join(lines)


def _goal_line(goal: dict[str, Any]) -> str:
    line = f"- {goal['name']}"
    if goal.get("priority"):
        line += f" (priority {goal['priority']}/10)"
    if goal.get("description"):
        line += f": {goal['description']}"
    if goal.get("metric") and goal.get("target") is not None:
        word = _COMPARISON_WORDS.get(goal.get("comparison") or "gte", "at least")
        line += f" — target: {goal['metric']} {word} {goal['target']}"
    elif goal.get("metric"):
        line += f" — measured by {goal['metric']}"
    return line


def _constraint_line(constraint: Any) -> str:
    if isinstance(constraint, str):
        return f"- {constraint.strip()}"
    line = f"- {constraint['text'].strip()}"
    if constraint.get("requires_approval_for"):
        line += " (needs human approval: " + ", ".join(constraint["requires_approval_for"]) + ")"
    return line


def _delegation_section(config: dict[str, Any]) -> str:
    """An orchestrator's team: who it may delegate to (frozen into the run by
    ``agents.types.type_run_config``) and its rules for choosing."""
    type_config = config.get("type_config") or {}
    directory = type_config.get("managed_agents_directory")
    if directory is None:  # a config not prepared for a run (previews): the ids only
        directory = [{"id": ref, "name": ref} for ref in type_config.get("managed_agents") or []]
    if not directory:
        return (
            "## Delegation\nNo agents are assigned to you: you may not delegate to any agent "
            "(trigger_workflow is refused)."
        )
    names = {entry["id"]: entry["name"] for entry in directory}
    lines = []
    for entry in directory:
        line = f"- {entry['name']} (workflow_id: {entry['id']})"
        detail = ", ".join(
            part
            for part in (
                entry.get("agent_type"),
                f"domain {entry['domain']}" if entry.get("domain") else "",
                "capabilities: " + ", ".join(entry["capabilities"]) if entry.get("capabilities") else "",
            )
            if part
        )
        if detail:
            line += f" [{detail}]"
        if (entry.get("description") or "").strip():
            line += f": {entry['description'].strip()}"
        lines.append(line)
    text = (
        "## Delegation\nDelegate with trigger_workflow, to these agents only (any other agent or a chain "
        "running other agents is refused):\n" + "\n".join(lines)
    )
    rules = type_config.get("delegation_rules") or []
    if rules:
        text += "\n\nDelegation rules:\n" + "\n".join(
            f"- When {rule['condition']}: delegate to {names.get(rule['agent'], rule['agent'])}"
            + (f" ({rule['priority']} priority)" if rule.get("priority", "normal") != "normal" else "")
            for rule in rules
        )
    return text


def _report_section(config: dict[str, Any]) -> str:
    """An analyst's report templates, and the one this run answers with."""
    templates = (config.get("type_config") or {}).get("report_templates") or []
    if not templates:
        return ""
    lines = []
    for template in templates:
        line = f"- {template['name']}"
        if template.get("description"):
            line += f": {template['description']}"
        if template.get("sections"):
            line += " (sections: " + ", ".join(template["sections"]) + ")"
        lines.append(line)
    text = "## Report Templates\n" + "\n".join(lines)
    report = config.get("report")
    if report:
        text += f"\n\nThis run's report: {report['name']}."
        if report.get("sections"):
            text += (
                " Answer with one JSON object whose keys are its sections ("
                + ", ".join(report["sections"])
                + "), each a non-empty text."
            )
    return text


def render_system_prompt(config: dict[str, Any]) -> str:
    """Personality, system prompt, instructions, goals, constraints and what the agent's type
    adds (an orchestrator's team, an analyst's reports), in that order."""
    sections = []
    personality = render_personality(config.get("personality"))
    if personality:
        sections.append(personality)
    if (config.get("system_prompt") or "").strip():
        sections.append(config["system_prompt"].strip())
    if (config.get("instructions") or "").strip():
        sections.append("## Instructions\n" + config["instructions"].strip())
    goals = sorted(
        (g if isinstance(g, dict) else {"name": g} for g in config.get("goals") or []),
        key=lambda g: -(g.get("priority") or 0),
    )
    if goals:
        sections.append("## Goals\n" + "\n".join(_goal_line(g) for g in goals))
    if config.get("constraints"):
        sections.append("## Constraints\n" + "\n".join(_constraint_line(c) for c in config["constraints"]))
    if config.get("agent_type") == AgentType.ORCHESTRATOR:
        sections.append(_delegation_section(config))
    elif config.get("agent_type") == AgentType.ANALYST and (report := _report_section(config)):
        sections.append(report)
    return "\n\n".join(sections)


def few_shot_messages(config: dict[str, Any]) -> list[dict[str, str]]:
    """``examples`` as chat turns to place between the system prompt and the task."""
    messages: list[dict[str, str]] = []
    for example in config.get("examples") or []:
        messages.append({"role": "user", "content": example["input"]})
        messages.append({"role": "assistant", "content": example["output"]})
    return messages
