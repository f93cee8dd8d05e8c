"""The tool view kept per process between runs (tools.view_cache): a run of an agent whose
tools did not change reads no tool rows, and every kind of change is seen by the next run."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.models import RiskRule
from executions.runtime.tools_port import ToolContext
from tools import view_cache
from tools.gateway import DatabaseToolPort
from tools.models import AgentCapabilityGrant, ModuleEndpoint, Tool

pytestmark = pytest.mark.django_db(transaction=True)


def fresh_view(env):
    """What the next run sees: a new attempt at a run has no per-run memo."""
    env.refresh()
    return DatabaseToolPort()._view(
        ToolContext(execution=env.execution, config=env.config, step_number=1, idempotency_key="k")
    )


def tool_queries(env) -> int:
    with CaptureQueriesContext(connection) as captured:
        fresh_view(env)
    return sum(1 for q in captured.captured_queries if "tools_" in q["sql"])


def test_a_second_run_reads_no_tool_rows(tool_env):
    view_cache.clear()
    assert tool_queries(tool_env) >= 1
    assert tool_queries(tool_env) == 0


def test_every_change_to_a_view_is_seen_by_the_next_run(tool_env):
    view_cache.clear()
    assert "send_emails" not in fresh_view(tool_env).capabilities
    tool_env.grant("send_emails")  # update_or_create: a signal
    assert "send_emails" in fresh_view(tool_env).capabilities

    AgentCapabilityGrant.objects.filter(agent=tool_env.agent).delete()
    assert "send_emails" not in fresh_view(tool_env).capabilities

    ModuleEndpoint.objects.create(organization=tool_env.org, module="sms", base_url="https://sms.example.test")
    assert "sms" in fresh_view(tool_env).modules

    RiskRule.objects.create(organization=tool_env.org, pattern="wait", risk_level="high")
    assert [r["pattern"] for r in fresh_view(tool_env).risk_rules] == ["wait"]

    wait = Tool.objects.get(name="wait", organization__isnull=True)
    wait.description = "Edited."
    wait.save()
    assert fresh_view(tool_env).catalog["wait"].description == "Edited."

    # A QuerySet.update sends no signal: without registry_changed() the cached view stays...
    Tool.objects.filter(pk=wait.pk).update(description="Edited twice.")
    assert fresh_view(tool_env).catalog["wait"].description == "Edited."
    view_cache.registry_changed()  # ...which is why the code that does one calls it.
    assert fresh_view(tool_env).catalog["wait"].description == "Edited twice."


def test_without_redis_every_run_reads_the_database(tool_env, monkeypatch):
    view_cache.clear()
    fresh_view(tool_env)
    monkeypatch.setattr(view_cache, "registry_version", lambda: None)
    assert tool_queries(tool_env) >= 1
    assert tool_queries(tool_env) >= 1


def test_a_view_is_not_trusted_past_its_age(tool_env, monkeypatch):
    view_cache.clear()
    fresh_view(tool_env)
    assert tool_queries(tool_env) == 0
    monkeypatch.setattr(view_cache, "MAX_AGE_SECONDS", 0.0)
    assert tool_queries(tool_env) >= 1
