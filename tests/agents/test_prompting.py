"""The system prompt and few-shot turns the runtime gets from a configuration."""

from __future__ import annotations

from agents import services
from agents.config import agent_version_config
from agents.prompting import few_shot_messages, render_personality, render_system_prompt
from tests.agents.conftest import actor_of


def test_structured_personality_is_rendered_as_lines():
    text = render_personality(
        {
            "description": "You are Alex.",
            "traits": ["curious", "kind"],
            "tone": "warm.",
            "behavior": ["asks before acting", "summarises at the end"],
            "language_style": "plain English",
        }
    )
    assert text == (
        "You are Alex.\n"
        "Traits: curious, kind.\n"
        "Tone: warm.\n"
        "Behavior: asks before acting; summarises at the end.\n"
        "Language style: plain English."
    )
    assert render_personality("  Just be nice. ") == "Just be nice."
    assert render_personality("") == ""


def test_system_prompt_orders_personality_prompt_instructions_goals_constraints():
    prompt = render_system_prompt(
        {
            "personality": "You are Sam.",
            "system_prompt": "You qualify leads.",
            "instructions": "Reply within a day.",
            "goals": [
                {"name": "Low", "priority": 2},
                {"name": "High", "priority": 9, "metric": "success_rate", "target": 90, "comparison": "gte"},
            ],
            "constraints": ["Never lie", {"text": "Ask before emailing", "requires_approval_for": ["email_send"]}],
        }
    )
    assert prompt == (
        "You are Sam.\n\n"
        "You qualify leads.\n\n"
        "## Instructions\nReply within a day.\n\n"
        "## Goals\n"
        "- High (priority 9/10) — target: success_rate at least 90\n"
        "- Low (priority 2/10)\n\n"
        "## Constraints\n"
        "- Never lie\n"
        "- Ask before emailing (needs human approval: email_send)"
    )


def test_empty_sections_are_left_out():
    assert render_system_prompt({"system_prompt": "Only this."}) == "Only this."


def test_examples_become_alternating_turns(alice, make_agent):
    agent = make_agent(alice, examples=[{"input": "Hi", "output": "Hello!"}, {"input": "Bye", "output": "See you."}])
    version = services.agent_publish(actor=actor_of(alice), agent=agent)
    config = agent_version_config(version)
    assert few_shot_messages(config) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "See you."},
    ]
    prompt = render_system_prompt(config)
    assert prompt.startswith("Traits: patient, precise.\nTone: casual.\n\nYou answer customer questions")
    assert "## Goals\n- Reliability (priority 5/10) — target: success_rate at least 90" in prompt


def test_an_orchestrator_without_agents_is_told_it_may_delegate_to_none():
    alone = render_system_prompt({"system_prompt": "Coordinate.", "agent_type": "orchestrator", "type_config": {}})
    assert alone.endswith(
        "No agents are assigned to you: you may not delegate to any agent (trigger_workflow is refused)."
    )
    # A configuration not prepared for a run (no directory) still names whom it may call.
    ids_only = render_system_prompt(
        {"system_prompt": "Coordinate.", "agent_type": "orchestrator", "type_config": {"managed_agents": ["a-1"]}}
    )
    assert "- a-1 (workflow_id: a-1)" in ids_only
    # The type decides: an assistant's prompt has no delegation section.
    assert "Delegation" not in render_system_prompt({"system_prompt": "Help.", "agent_type": "assistant"})
