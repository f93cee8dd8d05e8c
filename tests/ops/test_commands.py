"""Maintenance commands on real rows: prune, requeue, provider checks, organization export."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from agents.services.connections import provider_connection_create
from bench.fakes.script import text
from billing.models import UsageRecord
from executions.models import Execution, ExecutionEvent, ExecutionLog, ExecutionStep
from executions.runtime.loop import run_execution
from executions.services import execution_start

pytestmark = pytest.mark.django_db

SANDBOX = {"provider": "sandbox", "model": "sandbox-echo"}


def run(*args, **kwargs) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **kwargs)
    return out.getvalue()


@pytest.fixture
def sandbox_agent(make_agent):
    return make_agent(name="Sandboxed", model_config=SANDBOX)


def finished_run(org, agent, task: str) -> Execution:
    execution, _ = execution_start(agent=agent, organization=org, task=task)
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    return execution


def test_prune_executions_dry_run_then_delete_keeps_usage_and_live_runs(org, sandbox_agent):
    old = finished_run(org, sandbox_agent, "old one")
    recent = finished_run(org, sandbox_agent, "recent one")
    old_live, _ = execution_start(agent=sandbox_agent, organization=org, task="old but pending")
    long_ago = timezone.now() - timedelta(days=100)
    Execution.objects.filter(pk__in=[old.pk, old_live.pk]).update(created_at=long_ago)
    assert ExecutionStep.objects.filter(execution=old).exists()
    assert ExecutionEvent.objects.filter(execution=old).exists()
    usage_before = UsageRecord.objects.filter(organization=org).count()
    assert UsageRecord.objects.filter(execution=old).exists()

    out = run("prune_executions", "--older-than-days", "30", "--dry-run")
    assert "Would delete 1 executions" in out
    assert Execution.objects.filter(pk=old.pk).exists()

    out = run("prune_executions", "--older-than-days", "30", "--batch-size", "1")
    assert "deleted 1/1 executions" in out and "Deleted 1 executions" in out
    assert not Execution.objects.filter(pk=old.pk).exists()
    assert not ExecutionStep.objects.filter(execution_id=old.pk).exists()
    assert not ExecutionEvent.objects.filter(execution_id=old.pk).exists()
    assert not ExecutionLog.objects.filter(execution_id=old.pk).exists()
    assert Execution.objects.filter(pk__in=[recent.pk, old_live.pk]).count() == 2
    assert UsageRecord.objects.filter(organization=org).count() == usage_before

    assert "Deleted 0 executions" in run("prune_executions", "--older-than-days", "30")  # idempotent
    with pytest.raises(CommandError):
        run("prune_executions", "--older-than-days", "0")


def test_requeue_stuck_runs(org, sandbox_agent, django_capture_on_commit_callbacks):
    now = timezone.now()

    def make(status: str, **fields) -> Execution:
        execution, _ = execution_start(agent=sandbox_agent, organization=org, task=status)
        Execution.objects.filter(pk=execution.pk).update(status=status, **fields)
        return execution

    dead_lease = make("running", started_at=now, lease_owner="w1", lease_expires_at=now - timedelta(minutes=1),
                      deadline_at=now + timedelta(minutes=5))  # fmt: skip
    held = make("running", started_at=now, lease_owner="w2", lease_expires_at=now + timedelta(minutes=1))
    past_deadline = make("running", started_at=now - timedelta(hours=1), lease_expires_at=now - timedelta(minutes=1),
                         deadline_at=now - timedelta(minutes=30))  # fmt: skip
    lost_pending = make("pending", created_at=now - timedelta(minutes=10))
    ancient_pending = make("pending", created_at=now - timedelta(hours=3))
    fresh_pending = make("pending")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        out = run("requeue_stuck_runs", "--fail-after-minutes", "60", "--dry-run")
    assert not callbacks
    assert "Would re-queue 2 runs; would end 2 with ExecutionTimeout." in out
    assert Execution.objects.get(pk=past_deadline.pk).status == "running"

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        out = run("requeue_stuck_runs", "--fail-after-minutes", "60")
    assert "Re-queued 2 runs; ended 2 with ExecutionTimeout." in out, out
    # One enqueue per re-queued run, after commit (the other callbacks are the ended runs' hooks).
    assert len([c for c in callbacks if "enqueue_execution" in getattr(c, "__qualname__", "")]) == 2
    assert str(dead_lease.pk) in out and str(lost_pending.pk) in out
    timed_out = Execution.objects.get(pk=past_deadline.pk)
    assert (timed_out.status, timed_out.error_code) == ("timed_out", "ExecutionTimeout")
    failed = Execution.objects.get(pk=ancient_pending.pk)
    assert (failed.status, failed.error_code) == ("failed", "ExecutionTimeout")
    assert Execution.objects.get(pk=held.pk).status == "running"
    assert Execution.objects.get(pk=fresh_pending.pk).status == "pending"
    assert str(held.pk) not in out and str(fresh_pending.pk) not in out

    # Without --fail-after-minutes, age alone ends nothing; the ended runs stay ended.
    with django_capture_on_commit_callbacks(execute=False):
        out = run("requeue_stuck_runs")
    assert "ended 0 with ExecutionTimeout" in out


def test_check_provider_connections_calls_each_active_connection(owner_actor, providers_at_fake, settings):
    settings.PROVIDER_ENV = {}
    fake = providers_at_fake
    # Organizations' base URLs pass the SSRF guard: the fake, and a port where nothing listens.
    settings.AGENTRY_SSRF_ALLOW = [fake.allow_entry, "127.0.0.1:9"]
    provider_connection_create(
        actor=owner_actor,
        data={"provider": "openai", "name": "good", "api_key": "sk-good-1234", "base_url": fake.openai_base_url,
              "default_model": "gpt-4o-mini"},
    )  # fmt: skip
    provider_connection_create(
        actor=owner_actor,
        data={"provider": "openai", "name": "down", "api_key": "sk-down-5678", "base_url": "http://127.0.0.1:9/v1",
              "default_model": "gpt-4o-mini"},
    )  # fmt: skip
    provider_connection_create(
        actor=owner_actor,
        data={"provider": "openai", "name": "off", "base_url": fake.openai_base_url, "is_active": False},
    )
    fake.script(text("pong"))

    out = StringIO()
    with pytest.raises(CommandError, match="1 of 2 provider connections failed"):
        call_command("check_provider_connections", "--timeout", "3", stdout=out)
    output = out.getvalue()
    assert "OK" in output and "good" in output and " ms" in output
    assert "FAIL" in output and "down" in output
    assert " off " not in output
    assert "sk-good-1234" not in output and "sk-down-5678" not in output
    chats = fake.chat_requests
    assert len(chats) == 1
    body = chats[0].body
    assert body["model"] == "gpt-4o-mini"
    assert (body.get("max_tokens") or body.get("max_completion_tokens")) == 1


def test_export_organization(org, other_org, sandbox_agent, owner_actor, tmp_path):
    execution = finished_run(org, sandbox_agent, "exported")
    provider_connection_create(actor=owner_actor, data={"provider": "openai", "api_key": "sk-export-secret-9"})
    UsageRecord.objects.create(organization=other_org, provider="x", model="y")
    target = tmp_path / "export.json"

    out = run("export_organization", org.slug, "--output", str(target))
    assert "executions: 1" in out
    document = json.loads(target.read_text())
    assert document["organization"]["slug"] == org.slug
    assert [a["id"] for a in document["agents"]] == [str(sandbox_agent.pk)]
    assert {v["agent_id"] for v in document["agent_versions"]} == {str(sandbox_agent.pk)}
    assert [e["id"] for e in document["executions"]] == [str(execution.pk)]
    assert document["executions"][0]["status"] == "completed"
    assert document["usage_records"] and {u["organization_id"] for u in document["usage_records"]} == {str(org.pk)}
    raw = target.read_text()
    assert "sk-export-secret-9" not in raw and "encrypted" not in raw

    to_stdout = run("export_organization", org.slug)
    assert json.loads(to_stdout)["executions"][0]["id"] == str(execution.pk)
    with pytest.raises(CommandError):
        run("export_organization", "no-such-org")
