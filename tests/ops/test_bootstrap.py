"""First run: bootstrap creates demo agents that run to completion on the sandbox provider."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Organization
from agents.models import Agent, AgentTemplate
from executions.models import Execution
from executions.runtime.loop import run_execution
from executions.services import execution_start

pytestmark = pytest.mark.django_db


def bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap", "--email", "first@example.com", stdout=out)
    return out.getvalue()


def test_bootstrap_creates_sandbox_demo_agents_that_run(settings):
    settings.PROVIDER_ENV = {"openai": {"api_key": ""}, "anthropic": {}, "groq": {"api_key": ""}}
    call_command("sync_platform", verbosity=0)
    templates = AgentTemplate.objects.count()
    assert templates >= 1
    assert not Organization.objects.exists()

    out = bootstrap()
    organization = Organization.objects.get()
    agents = list(Agent.objects.filter(organization=organization))
    assert len(agents) == templates
    assert "Demo agents (sandbox/sandbox-echo):" in out
    for agent in agents:
        assert str(agent.pk) in out
        assert agent.current_version is not None  # published
        assert (agent.llm_provider, agent.llm_model) == ("sandbox", "sandbox-echo")
    assert "Run one:   curl -X POST" in out and "/execute/" in out
    assert "{settings.PORT}" not in out

    agent = next(a for a in agents if str(a.pk) in out.split("Run one:")[1])
    execution, _ = execution_start(agent=agent, organization=organization, task="Say hello")
    run_execution(execution.pk)
    execution = Execution.objects.get(pk=execution.pk)
    assert execution.status == "completed", (execution.error_code, execution.error)
    # The analyst answers in its report's JSON shape, the others in text: labelled either way.
    answer = execution.result_text or json.dumps(execution.output)
    assert "[sandbox]" in answer, answer

    # Not the first run any more: nothing new.
    assert "set up already" in bootstrap()
    assert Agent.objects.filter(organization=organization).count() == templates


def test_bootstrap_uses_a_configured_provider(settings):
    settings.PROVIDER_ENV = {"openai": {"api_key": ""}, "anthropic": {"api_key": "sk-ant-test"}, "groq": {}}
    call_command("sync_platform", verbosity=0)
    out = bootstrap()
    assert "Demo agents (anthropic/" in out
    providers = set(Agent.objects.values_list("llm_provider", flat=True))
    assert providers == {"anthropic"}
