"""The predefined values of the agent body's descriptive fields.

``capabilities`` are descriptive tags (what the agent is for: the A2A card's skills, search,
the console's multi-select), taken from this documented list as the tenant backend asks
("Capabilities: predefined list of valid capabilities"). They grant nothing: what an agent's
tools may touch is granted apart (PUT agents/{id}/capabilities/, the tools app's names).

The personality enumerations are the AI-hub summary's (``tone``, ``behavior``,
``language_style``). Both are checked when a value is written (agents.validation); rows
stored before the lists existed keep their values and still load, publish and run.
"""

from __future__ import annotations

# name -> what the tag says the agent does. Extend by adding a line (and its test row).
CAPABILITY_TAGS: dict[str, str] = {
    # Sales
    "lead_qualification": "Scores and qualifies leads against criteria.",
    "prospect_research": "Researches prospects and their companies.",
    "email_drafting": "Drafts outbound and reply emails.",
    "meeting_scheduling": "Books and reschedules meetings.",
    "follow_up": "Follows up on open conversations and tasks.",
    "crm_management": "Keeps CRM contacts, notes and deals up to date.",
    # Support and success
    "customer_support": "Answers customer questions.",
    "ticket_triage": "Sorts and routes incoming requests.",
    "onboarding": "Guides new customers or users through setup.",
    "customer_health_monitoring": "Watches customer health and churn signals.",
    "sentiment_analysis": "Reads the sentiment of messages and feedback.",
    # Assistant work
    "task_management": "Creates and tracks tasks.",
    "calendar_management": "Manages calendars and availability.",
    "summarization": "Summarises documents, threads and meetings.",
    "translation": "Translates between languages.",
    "content_writing": "Writes marketing and product content.",
    "knowledge_retrieval": "Answers from the organization's knowledge bases.",
    "web_research": "Searches and reads the web.",
    # Analysis
    "data_analysis": "Queries and aggregates data.",
    "reporting": "Produces periodic reports.",
    "forecasting": "Projects metrics forward.",
    "anomaly_detection": "Spots unusual values in metrics or events.",
    # Orchestration and monitoring
    "workflow_orchestration": "Delegates work to other agents and chains.",
    "delegation": "Hands tasks to the agents best placed to do them.",
    "monitoring": "Watches metrics and raises alerts.",
    "alerting": "Notifies people when something needs attention.",
    "security_monitoring": "Watches for security threats and suspicious activity.",
    "compliance_checking": "Checks actions and content against policies.",
}

# The AI-hub summary's personality enumerations (its TypeScript union types).
PERSONALITY_TONES = ("professional", "casual", "formal", "enthusiastic")
PERSONALITY_BEHAVIORS = ("helpful", "direct", "empathetic", "technical")
PERSONALITY_LANGUAGE_STYLES = ("concise", "detailed", "conversational")

PERSONALITY_ENUMS: dict[str, tuple[str, ...]] = {
    "tone": PERSONALITY_TONES,
    "behavior": PERSONALITY_BEHAVIORS,
    "language_style": PERSONALITY_LANGUAGE_STYLES,
}


def vocabulary() -> dict[str, object]:
    """What GET agents/vocabulary/ answers."""
    return {
        "capabilities": [{"name": name, "description": text} for name, text in CAPABILITY_TAGS.items()],
        "personality": {key: list(values) for key, values in PERSONALITY_ENUMS.items()},
    }
