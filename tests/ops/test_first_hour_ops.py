"""The first hour from a terminal: run_agent by name or slug, create_organization on a taken
slug, errors as text, absolute links in e-mails, quiet routine ticks (issue 19)."""

from __future__ import annotations

import io
import json
import logging
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from config.celery import app as celery_app
from config.logging import RoutineTasksAtDebug
from config.site import CACHE_KEY, answer_base_url, base_url
from tests.tools.fixtures import synced_tools  # noqa: F401

pytestmark = pytest.mark.django_db

SANDBOX = {"provider": "sandbox", "model": "sandbox-echo"}


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_run_agent_prints_the_tools_not_offered(org, make_agent, synced_tools):  # noqa: F811
    make_agent(name="Mailer", model_config=SANDBOX, allowed_tools=["email_send", "wait"])
    out = run("run_agent", "Mailer", "Say hello")
    assert "  warning: Allowed tools not offered to the model: email_send. email_send needs the send_emails" in out
    assert out.splitlines()[-1].startswith("completed:")


@pytest.mark.django_db(transaction=True)
def test_run_agent_accepts_a_name_or_a_slug(org, make_agent):
    agent = make_agent(name="Weekly Digest", model_config=SANDBOX)
    by_name = run("run_agent", "weekly digest", "Say hello")
    assert by_name.splitlines()[-1].startswith("completed:")
    by_slug = run("run_agent", agent.slug, "Say hello", "--organization", org.slug)
    assert by_slug.splitlines()[-1].startswith("completed:")
    assert agent.executions.count() == 2


def test_run_agent_says_plainly_what_it_cannot_find(org, other_org, make_agent, oscar):
    from accounts.access import Actor
    from accounts.models import Membership
    from agents.services.agents import agent_create

    make_agent(name="Helper", model_config=SANDBOX)
    theirs = Actor(organization=other_org, user=oscar, membership=Membership.objects.get(user=oscar))
    agent_create(actor=theirs, data={"name": "Helper", "system_prompt": "You help Globex."})
    with pytest.raises(
        CommandError, match=r"2 agents are called 'Helper' \(acme, globex\); name one with --organization"
    ):
        run("run_agent", "Helper", "x")
    with pytest.raises(CommandError, match="No agent with the id, slug or name 'Nobody'"):
        run("run_agent", "Nobody", "x")
    with pytest.raises(CommandError, match="No organization with the slug 'nowhere'"):
        run("run_agent", "Helper", "x", "--organization", "nowhere")


def test_run_agent_prints_refusals_as_text_not_dicts(org, make_agent):
    make_agent(name="Typed", model_config=SANDBOX, input_schema={"type": "object", "required": ["n"]})
    with pytest.raises(CommandError) as refused:
        run("run_agent", "Typed", "x")
    text = str(refused.value)
    assert "{'" not in text and "validation_errors" not in text  # no Python dict
    assert "\n  context" in text and '\n  input_schema: {"type": "object", "required": ["n"]}' in text, text


def test_create_organization_on_a_taken_slug_says_so_plainly(org):
    with pytest.raises(CommandError) as taken:
        run("create_organization", org.slug, "--owner", "someone@example.test")
    assert str(taken.value).startswith(f"An organization with the slug {org.slug!r} already exists")
    assert "nothing was changed" in str(taken.value)
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(email="someone@example.test").exists()


def test_command_errors_print_as_text(org, alice):
    with pytest.raises(CommandError) as refused:
        run("create_api_token", "--user", alice.email, "--organization", org.slug, "--scopes", "galaxy:read")
    text = str(refused.value)
    assert "\n  scopes: Unknown scopes ['galaxy:read']" in text and "validation_errors" not in text


# --- Absolute links in notification e-mails -------------------------------------------------


def _held_approval(org, make_agent):
    from tests.approvals.helpers import pending_approvals

    return pending_approvals(make_agent(name="Mailer"), org)[0]


def test_approval_emails_link_to_agentry_base_url(org, adam, make_agent, settings):
    from approvals.tasks import notify_approvers

    settings.AGENTRY_BASE_URL = "https://agentry.example.com/"
    approval = _held_approval(org, make_agent)
    assert notify_approvers(str(approval.pk)) >= 1
    assert f"https://agentry.example.com/approvals/{approval.pk}/" in mail.outbox[0].body


def test_without_a_setting_the_link_uses_the_host_requests_come_in_at(org, adam, make_agent, settings, client):
    from approvals.tasks import notify_approvers

    settings.AGENTRY_BASE_URL = ""
    settings.ALLOWED_HOSTS = ["agentry.internal", "testserver"]
    from django.core.cache import cache

    cache.delete(CACHE_KEY)
    assert base_url() == "http://localhost:8000"  # before any request: where make run serves
    client.get("/", HTTP_HOST="agentry.internal:8443", secure=True)
    assert base_url() == "https://agentry.internal:8443"
    approval = _held_approval(org, make_agent)
    notify_approvers(str(approval.pk))
    assert f"https://agentry.internal:8443/approvals/{approval.pk}/" in mail.outbox[0].body
    # A host outside ALLOWED_HOSTS is refused, never remembered.
    client.get("/", HTTP_HOST="evil.example")
    assert base_url() == "https://agentry.internal:8443"


def test_a_wildcard_allowed_hosts_is_never_trusted_for_links(settings, client):
    from django.core.cache import cache

    settings.AGENTRY_BASE_URL = ""
    settings.ALLOWED_HOSTS = ["*"]
    cache.delete(CACHE_KEY)
    client.get("/", HTTP_HOST="attacker.example")
    assert base_url() == "http://localhost:8000"


def test_links_in_an_answer_go_back_where_the_request_came_unless_configured(settings):
    settings.AGENTRY_BASE_URL = ""
    assert answer_base_url("http://10.0.0.5:8000/") == "http://10.0.0.5:8000"
    settings.AGENTRY_BASE_URL = "https://agentry.example.com/"
    assert answer_base_url("http://10.0.0.5:8000/") == "https://agentry.example.com"


# --- Quiet logs ------------------------------------------------------------------------------


@pytest.fixture
def json_lines():
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler) and h.filters)
    assert any(isinstance(f, RoutineTasksAtDebug) for f in handler.filters)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    handler.setStream(previous)


def test_the_five_second_tick_logs_at_debug_and_other_tasks_at_info(json_lines):
    beat, strategy, trace = (
        logging.getLogger(n) for n in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
    )
    beat.info("Scheduler: Sending due task %s (%s)", "executions.tick", "executions.tick")
    strategy.info("Task %s[%s] received", "executions.tick", "0b1d")
    trace.info("Task %s[%s] succeeded in %ss: %r", "executions.tick", "0b1d", 0.01, None)
    beat.info("Scheduler: Sending due task %s (%s)", "approvals.expire", "approvals.expire")
    trace.error("Task %s[%s] raised unexpected: %r", "executions.tick", "0b1d", RuntimeError("boom"))
    lines = json_lines()
    assert [(line["level"], line["message"].split(":")[0]) for line in lines] == [
        ("INFO", "Scheduler"),
        ("ERROR", "Task executions.tick[0b1d] raised unexpected"),
    ]
    assert "approvals.expire" in lines[0]["message"]


def test_what_a_worker_prints_is_logged_at_info():
    # The console e-mail backend prints each message; Celery logs a task's stdout at this level.
    assert celery_app.conf.worker_redirect_stdouts_level == "INFO"


# --- Building the client in place leaves nothing for git to report ---------------------------


def test_building_the_client_in_place_leaves_no_untracked_files(tmp_path):
    """As the README's `pip install ./clients/python` does: a build in the source tree (here a
    throwaway repository with this one's .gitignore and the client committed)."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    repo = tmp_path / "repo"
    shutil.copytree(root / "clients" / "python", repo / "clients" / "python",
                    ignore=shutil.ignore_patterns("__pycache__", ".*_cache", "build", "dist", "*.egg-info"))  # fmt: skip
    shutil.copy(root / ".gitignore", repo / ".gitignore")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.test", "-c", "user.name=t"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "client"]):
        subprocess.run([*git, *command], check=True, timeout=60)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    wheels = tmp_path / "wheels"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", "-w", wheels, repo / "clients" / "python"], check=True, env=env, timeout=180
    )
    assert (repo / "clients" / "python" / "build").is_dir()  # the build did run in place
    status = subprocess.run([*git, "status", "--porcelain", "--untracked-files=all"], capture_output=True, text=True)
    assert status.stdout == ""
