from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import AgentVersion, PublishedVersionImmutable
from config.api.errors import exception_handler
from tests.agents.factories import AgentFactory


def test_defaults_follow_the_reference(org):
    agent = AgentFactory(organization=org)
    agent.refresh_from_db()
    assert (agent.llm_provider, agent.llm_model, str(agent.temperature), agent.max_tokens) == (
        "openai",
        "gpt-4o",
        "0.70",
        4096,
    )
    assert (agent.max_steps_per_run, agent.max_tool_calls_per_step, agent.timeout_seconds) == (10, 3, 120)
    assert (agent.max_runs_per_hour, agent.max_runs_per_day) == (60, 500)
    assert agent.is_active is False
    assert agent.status == "draft"


def test_names_are_unique_per_organization_case_insensitively(org, other_org):
    AgentFactory(organization=org, name="Helper", slug="helper")
    AgentFactory(organization=other_org, name="Helper", slug="helper")
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentFactory(organization=org, name="HELPER", slug="helper-2")


def test_soft_deleted_agent_frees_its_name(org):
    AgentFactory(organization=org, name="Helper", slug="helper", deleted_at=timezone.now())
    assert AgentFactory(organization=org, name="Helper", slug="helper").pk


def test_published_version_row_cannot_be_saved_again(org):
    agent = AgentFactory(organization=org)
    version = AgentVersion.objects.create(
        agent=agent, version="1.0.0", major=1, minor=0, patch=0, config={}, published_at=timezone.now()
    )
    version.changelog = "rewritten history"
    with pytest.raises(PublishedVersionImmutable):
        version.save()
    # The API maps the model's error to its code (nothing HTTP in the model itself).
    answer = exception_handler(PublishedVersionImmutable("Version 1.0.0 is published and cannot change."), {})
    assert answer is not None and answer.status_code == 409
    assert answer.data["error"]["code"] == "VersionConflict"
    assert answer.data["error"]["message"] == "Version 1.0.0 is published and cannot change."
    version.refresh_from_db()
    assert version.changelog == ""
