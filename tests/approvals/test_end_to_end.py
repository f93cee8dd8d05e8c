"""The approval flow end to end, across real processes: a Celery worker runs the agent until
it waits, an approver uses the pages in headless Chromium (Debian's chromium and
chromedriver, through Selenium), the worker resumes the run and the tool runs once.
Deny and expiry go through the worker too. Screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from approvals.models import ApprovalRequest
from bench.fakes.script import text, tool_call
from executions.models import Execution
from executions.services import execution_start
from tests.fakes.fixtures import FAKE_API_KEY
from tests.processes import celery_worker, wait_for
from tools.models import AgentCapabilityGrant, ToolCall

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
ASKED = {"to": ["everyone@example.test"], "subject": "Refund", "body": "Your refund is on its way."}
PASSWORD = "pw-123456789"  # tests.factories.UserFactory


def _purge_broker() -> None:
    # Messages left by in-process tests (whose rows are gone) would only slow the worker down.
    from redis import Redis

    Redis.from_url(settings.CELERY_BROKER_URL).delete("io", "default")


@pytest.fixture
def mailer(org, make_agent, providers_at_fake, synced_tools):
    agent = make_agent(name="Mailer", allowed_tools=["email_send"])
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["send_emails"])
    return agent


@pytest.fixture
def worker_env(providers_at_fake) -> dict[str, str]:
    _purge_broker()
    return {
        "OPENAI_BASE_URL": providers_at_fake.openai_base_url,
        "OPENAI_API_KEY": FAKE_API_KEY,
        # Memory extraction after a run calls the model too; these tests count the agent's calls.
        "MEMORY_EXTRACTION_ENABLED": "0",
    }


def agent_calls(fake) -> list:
    """The agent's own model calls (not a memory extraction, which asks for a JSON object)."""
    return [r for r in fake.chat_requests if "response_format" not in r.body]


def _held_run(org, agent) -> tuple[Execution, ApprovalRequest]:
    execution, _ = execution_start(agent=agent, organization=org, task="Tell the customer about the refund")
    wait_for(lambda: Execution.objects.get(pk=execution.pk).status == "waiting_approval", 30, message="the held call")
    return execution, ApprovalRequest.objects.get(execution=execution)


def test_request_page_approve_with_edits_resume_tool_runs_once(
    org, adam, mailer, providers_at_fake, worker_env, live_server, browser
):
    from selenium.webdriver.common.by import By

    providers_at_fake.script(tool_call("email_send", ASKED), text("Sent to the customer."))
    with celery_worker(queues="default,io", concurrency=2, extra_env=worker_env):
        execution, approval = _held_run(org, mailer)
        assert ToolCall.objects.get(execution=execution).status == "pending"

        browser.get(f"{live_server.url}/approvals/")
        assert "/accounts/login/" in browser.current_url  # the pages need a login
        browser.find_element(By.ID, "id_username").send_keys(adam.username)
        browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for(lambda: browser.current_url.rstrip("/").endswith("/approvals"), 10, message="the list")
        # The URL changes when the next page starts loading; its rows may not be there yet.
        title = "Send an email to everyone@example.test: “Refund”"
        wait_for(lambda: browser.find_elements(By.LINK_TEXT, title), 10, message="the request in the list")
        row = browser.find_element(By.LINK_TEXT, title)
        assert browser.find_element(By.CSS_SELECTOR, ".risk-high").text == "high"
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "approvals-list.png"))
        row.click()

        wait_for(lambda: f"/approvals/{approval.pk}/" in browser.current_url, 10, message="the detail page")
        page = browser.page_source
        assert "Tell the customer about the refund" in page and "awaiting_approval" in page
        params = browser.find_element(By.ID, "params")
        assert json.loads(params.get_attribute("value")) == ASKED
        edited = {**ASKED, "to": ["customer@example.test"]}
        params.clear()
        params.send_keys(json.dumps(edited, indent=2))
        browser.find_element(By.ID, "approve-note").send_keys("Only the customer, please")
        browser.save_screenshot(str(ARTIFACTS / "approvals-detail.png"))
        browser.find_element(By.ID, "approve").click()

        wait_for(lambda: "Approved:" in browser.page_source, 10, message="the confirmation")
        wait_for(lambda: Execution.objects.get(pk=execution.pk).status == "completed", 30, message="the resumed run")

    assert (ARTIFACTS / "approvals-detail.png").stat().st_size > 1000
    execution.refresh_from_db()
    assert execution.output == {"text": "Sent to the customer."}
    approval.refresh_from_db()
    assert (approval.status, approval.resolved_by, approval.action_params) == ("approved", adam, edited)
    assert approval.resolution_note == "Only the customer, please"
    (call,) = ToolCall.objects.filter(execution=execution)  # executed exactly once
    assert call.status == "completed" and call.input_params == edited
    assert call.output_result == {"sent": True, "to": ["customer@example.test"], "subject": "Refund"}
    assert len(agent_calls(providers_at_fake)) == 2
    assert execution.steps.filter(step_type="act", status="completed").count() == 1


def test_deny_and_expiry_with_a_worker(org, alice, mailer, providers_at_fake, worker_env, client_for):
    from config.celery import app

    providers_at_fake.script(tool_call("email_send", ASKED), tool_call("email_send", ASKED), text("never"))
    with celery_worker(queues="default,io", concurrency=2, extra_env=worker_env):
        denied_run, to_deny = _held_run(org, mailer)
        expired_run, to_expire = _held_run(org, mailer)
        response = client_for(alice).post(f"/api/v1/approvals/{to_deny.pk}/deny/", {"note": "No."}, format="json")
        assert response.status_code == 200 and response.json()["status"] == "denied"

        ApprovalRequest.objects.filter(pk=to_expire.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        app.send_task("approvals.expire", queue="default")  # what beat sends every minute
        wait_for(lambda: ApprovalRequest.objects.get(pk=to_expire.pk).status == "expired", 20, message="expiry")

    for run, code in ((denied_run, "ApprovalDenied"), (expired_run, "ApprovalExpired")):
        run.refresh_from_db()
        assert run.status == "cancelled" and run.error_code == code
        assert ToolCall.objects.get(execution=run).status == "denied"
    assert len(agent_calls(providers_at_fake)) == 2  # neither run called the model again
