"""clients/python/examples/quickstart.py against a live server: uvicorn and a Celery worker on
the test database, the script run as integrators run it (a subprocess with AGENTRY_URL and
AGENTRY_TOKEN), once on the keyless sandbox provider that `make run` uses and once on a
scripted model (the fake LLM server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from accounts.services import api_token_create
from agents.models import Agent
from approvals.models import ApprovalRequest
from bench.fakes.script import text, tool_call
from executions.models import Execution
from tests.fakes.fixtures import FAKE_API_KEY
from tests.processes import asgi_server, celery_worker
from tools.models import Notification, ToolCall

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "clients" / "python" / "examples" / "quickstart.py"
TASK = "Use notify_user to tell me that the quarterly report is ready."


@pytest.fixture
def server_env(providers_at_fake) -> dict[str, str]:
    from redis import Redis

    from tools.services import tools_sync

    tools_sync()
    # Messages left by in-process tests (whose rows are gone) would only slow the worker down.
    Redis.from_url(settings.CELERY_BROKER_URL).delete("io", "default")
    return {
        "OPENAI_BASE_URL": providers_at_fake.openai_base_url,
        "OPENAI_API_KEY": FAKE_API_KEY,
        # Memory extraction after a run calls the model too; the fake answers the agent only.
        "MEMORY_EXTRACTION_ENABLED": "0",
    }


def _quickstart(url: str, token: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "AGENTRY_"))}
    env.update(AGENTRY_URL=url, AGENTRY_TOKEN=token, PYTHONPATH=str(SCRIPT.parents[1]), **extra)
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def _the_run(stdout: str) -> Execution:
    (line,) = [line for line in stdout.splitlines() if line.startswith("execution ")]
    return Execution.objects.get(pk=line.split()[1].rstrip(":"))


def _assert_approved_and_ran_once(execution: Execution, alice, message: str) -> None:
    assert execution.status == "completed", (execution.status, execution.error)
    approval = ApprovalRequest.objects.get(execution=execution)
    assert (approval.status, approval.resolved_by, approval.action_type) == ("approved", alice, "notify_user")
    assert approval.resolution_note == "Approved by quickstart.py"
    assert approval.risk_explanation == "Agent constraint: Ask a person before notifying anyone."
    (call,) = ToolCall.objects.filter(execution=execution)  # held, approved, run exactly once
    assert (call.tool_name, call.status) == ("notify_user", "completed")
    (sent,) = Notification.objects.filter(execution=execution, title="")  # not the approvers' notices
    assert (sent.user, sent.channel, sent.message) == (alice, "in_app", message)
    assert execution.steps.filter(step_type="act", status="completed").count() == 1


def test_quickstart_creates_runs_streams_and_approves(org, alice, providers_at_fake, server_env):
    _, token = api_token_create(user=alice, organization=org)
    providers_at_fake.script(
        tool_call("notify_user", {"message": "The quarterly report is ready."}),
        text("I let you know that the quarterly report is ready."),
    )
    with asgi_server(server_env) as url, celery_worker(queues="default,io", concurrency=2, extra_env=server_env):
        sandbox = _quickstart(url, token)
        scripted = _quickstart(url, token, AGENTRY_PROVIDER="openai", AGENTRY_MODEL="gpt-4o")

    # The sandbox: it calls the tool the task names, with the task as the message.
    out = sandbox.stdout
    assert "sandbox/sandbox-echo" in out
    assert "approval_requested: the run asks to call notify_user" in out
    assert "approving: Notify the run's requester by in_app" in out and "approved" in out
    assert "execution_completed" in out and "status: completed" in out
    assert "output: [sandbox] No model was called." in out
    # Events arrive in order, each once, and the stream ends with the run.
    names = [line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("  #")]
    assert names.index("approval_requested") < names.index("act_completed") < names.index("execution_completed")
    assert names[-1] == "execution_completed" and names.count("execution_completed") == 1
    run = _the_run(out)
    _assert_approved_and_ran_once(run, alice, TASK)
    assert run.agent.llm_provider == "sandbox"

    # A scripted model: the same flow through the provider SDK.
    out = scripted.stdout
    assert "openai/gpt-4o" in out and "approval_requested" in out and "execution_completed" in out
    assert out.rstrip().endswith("output: I let you know that the quarterly report is ready.")
    run = _the_run(out)
    _assert_approved_and_ran_once(run, alice, "The quarterly report is ready.")
    assert run.output == {"text": "I let you know that the quarterly report is ready."}
    agent_calls = [r for r in providers_at_fake.chat_requests if "response_format" not in r.body]
    assert len(agent_calls) == 2  # held call, then the answer after the tool ran
    assert Agent.objects.filter(organization=org, name__startswith="Quickstart notifier").count() == 2
