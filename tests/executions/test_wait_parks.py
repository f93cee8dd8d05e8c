"""``wait`` on execute answers as soon as the run parks (approval or timer), with that status,
instead of holding the request for the whole wait (issue 19, the first hour)."""

from __future__ import annotations

import time

import pytest

from bench.fakes.script import tool_call
from tests.fakes.fixtures import FAKE_API_KEY
from tests.processes import celery_worker
from tests.tools.fixtures import synced_tools  # noqa: F401
from tools.models import AgentCapabilityGrant

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = {"to": ["customer@example.test"], "subject": "Your refund", "body": "It is on its way."}


def test_wait_returns_when_the_run_parks_for_an_approval_or_a_timer(
    org,
    alice,
    make_agent,
    client_for,
    providers_at_fake,
    synced_tools,  # noqa: F811
):
    mailer = make_agent(name="Mailer", allowed_tools=["email_send"])
    AgentCapabilityGrant.objects.create(organization=org, agent=mailer, capabilities=["send_emails"])
    sleeper = make_agent(name="Sleeper", allowed_tools=["wait"])
    providers_at_fake.script(tool_call("email_send", EMAIL), tool_call("wait", {"seconds": 3600}))
    env = {
        "OPENAI_BASE_URL": providers_at_fake.openai_base_url,
        "OPENAI_API_KEY": FAKE_API_KEY,
        "MEMORY_EXTRACTION_ENABLED": "0",
    }
    api = client_for(alice)
    with celery_worker(queues="io", concurrency=1, extra_env=env):
        answers = []
        for agent in (mailer, sleeper):
            started = time.monotonic()
            response = api.post(f"/api/v1/agents/{agent.id}/execute/", {"task": "Go", "wait": 60}, format="json")
            answers.append((response, time.monotonic() - started))
    (held, held_seconds), (timer, timer_seconds) = answers
    assert held.status_code == 202 and held.json()["status"] == "waiting_approval", held.content
    assert timer.status_code == 202 and timer.json()["status"] == "waiting", timer.content
    # Well under the 60 s asked for: answered when parked (a worker's start-up included).
    assert held_seconds < 30 and timer_seconds < 30, (held_seconds, timer_seconds)
