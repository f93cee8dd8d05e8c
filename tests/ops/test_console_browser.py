"""The operator console in Debian's headless Chromium: log in, the grouped index, the
dashboard, an agent, a run's trace (read-only, no horizontal scrolling at 1280 px or on a
phone), the usage page. A real Celery worker runs the agent against the fake LLM server.
Screenshots: tests/artifacts/console-*-{desktop,phone}.png."""

from __future__ import annotations

import pytest
from django.conf import settings

from approvals.models import ApprovalRequest
from approvals.services import approval_resolve
from bench.fakes.script import text, tool_call
from executions.models import Execution
from executions.services import execution_start
from tests.console_browser import ARTIFACTS, admin_login, editable_fields, screenshots
from tests.factories import MembershipFactory
from tests.fakes.fixtures import FAKE_API_KEY
from tests.processes import asgi_server, celery_worker, wait_for
from tests.tools.fixtures import *  # noqa: F403
from tools.models import AgentCapabilityGrant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ASKED = {"to": ["customer@example.test"], "subject": "Refund", "body": "Your refund is on its way."}


@pytest.fixture
def operator(org):
    user = MembershipFactory(organization=org, role="admin").user
    user.is_staff = user.is_superuser = True
    user.save()
    return user


@pytest.fixture
def worker_env(providers_at_fake) -> dict[str, str]:
    from redis import Redis

    Redis.from_url(settings.CELERY_BROKER_URL).delete("io", "default")
    return {
        "OPENAI_BASE_URL": providers_at_fake.openai_base_url,
        "OPENAI_API_KEY": FAKE_API_KEY,
        "MEMORY_EXTRACTION_ENABLED": "0",
    }


@pytest.fixture
def mailer(org, make_agent, providers_at_fake, synced_tools):
    agent = make_agent(name="Refund mailer", allowed_tools=["email_send"])
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["send_emails"])
    return agent


def _finished_run(org, alice, mailer, providers_at_fake, worker_env) -> Execution:
    from accounts.access import Actor
    from accounts.models import Membership

    providers_at_fake.script(tool_call("email_send", ASKED), text("Sent the refund e-mail to the customer."))
    actor = Actor(organization=org, user=alice, membership=Membership.objects.get(user=alice, organization=org))
    with celery_worker(queues="default,io", concurrency=2, extra_env=worker_env):
        execution, _ = execution_start(agent=mailer, organization=org, task="Tell the customer about the refund")
        wait_for(lambda: Execution.objects.get(pk=execution.pk).status == "waiting_approval", 30, message="the hold")
        approval_resolve(approval=ApprovalRequest.objects.get(execution=execution), actor=actor, approved=True)
        wait_for(lambda: Execution.objects.get(pk=execution.pk).status == "completed", 30, message="the resumed run")
    return Execution.objects.get(pk=execution.pk)


def test_console_index_dashboard_agent_trace_and_usage(
    live_server, browser, org, alice, operator, mailer, providers_at_fake, worker_env
):
    from selenium.webdriver.common.by import By

    execution = _finished_run(org, alice, mailer, providers_at_fake, worker_env)
    admin_login(browser, live_server.url, operator)

    # The index: Agentry's name, the task groups in order, celery-beat under "Advanced".
    assert browser.find_element(By.CSS_SELECTOR, "#site-name").text == "Agentry console"
    groups = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".console-groups caption")]
    assert groups[:7] == [
        "Agents", "Runs", "Approvals", "Memory & knowledge", "Tools & MCP", "Usage & billing", "Organizations",
    ]  # fmt: skip
    assert groups[-1] == "Advanced"
    advanced = browser.find_element(By.CSS_SELECTOR, ".app-advanced").text
    assert "Periodic tasks" in advanced and "Crontabs" in advanced
    assert screenshots(browser, "index") == {"desktop": 0, "phone": 0}

    browser.get(f"{live_server.url}/admin/dashboard/")
    wait_for(lambda: "Operations dashboard" in browser.title, 10, message="the dashboard")
    assert screenshots(browser, "dashboard")["desktop"] == 0

    browser.get(f"{live_server.url}/admin/agents/agent/{mailer.pk}/change/")
    wait_for(lambda: "Refund mailer" in browser.page_source, 10, message="the agent")
    screenshots(browser, "agent")

    # The trace: titled by agent and time, every step, nothing editable, no sideways scrolling.
    browser.get(f"{live_server.url}/admin/executions/execution/{execution.pk}/change/")
    wait_for(lambda: browser.find_elements(By.ID, "timeline"), 10, message="the trace")
    assert browser.find_element(By.CSS_SELECTOR, "#content h1").text.startswith("Refund mailer · ")
    kinds = [e.get_attribute("class").split()[0] for e in browser.find_elements(By.CSS_SELECTOR, "#timeline > li")]
    assert kinds == ["observe", "think", "act", "think"]
    for details in browser.find_elements(By.CSS_SELECTOR, "#timeline details.step"):
        browser.execute_script("arguments[0].open = true", details)
    first_think = browser.find_element(By.ID, "step-2").text
    assert "Tell the customer about the refund" in first_think  # the messages sent
    assert "email_send" in first_think and "Raw answer" in first_think
    act = browser.find_element(By.ID, "step-3").text
    assert "customer@example.test" in act and "approved" in act
    assert editable_fields(browser) == []
    assert not browser.find_elements(By.CSS_SELECTOR, "input[type=submit][name=_save]")
    assert screenshots(browser, "trace") == {"desktop": 0, "phone": 0}

    browser.get(f"{live_server.url}/admin/accounts/organization/{org.pk}/usage/")
    wait_for(lambda: "Last 30 days" in browser.page_source, 10, message="the usage page")
    legend = browser.find_element(By.ID, "usage-legend").text
    assert "USD (left axis)" in legend and "Tokens per day" in legend
    axis = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#usage-chart .cost-axis")]
    assert axis[0] == "$0" and len(axis) == 5
    by_agent = browser.find_element(By.ID, "usage-by-agent").text
    assert "Refund mailer" in by_agent  # a name, with its runs and model calls
    row = browser.find_element(By.CSS_SELECTOR, "#usage-by-agent tbody tr").text.split()
    assert row[-3:-1] == ["1", "2"], row  # 1 run, 2 model calls
    assert screenshots(browser, "usage") == {"desktop": 0, "phone": 0}


def test_playground_runs_the_agent_shows_steps_live_and_approves_inline(
    browser, org, operator, mailer, providers_at_fake, worker_env
):
    """Served by uvicorn (the event stream is asynchronous, as in production)."""
    from selenium.webdriver.common.by import By

    providers_at_fake.script(tool_call("email_send", ASKED), text("Sent the refund e-mail to the customer."))
    with asgi_server() as base, celery_worker(queues="default,io", concurrency=2, extra_env=worker_env):
        admin_login(browser, base, operator)
        browser.get(f"{base}/admin/agents/agent/{mailer.pk}/change/")
        browser.find_element(By.ID, "open-playground").click()
        wait_for(lambda: browser.find_elements(By.ID, "pg-task"), 10, message="the playground")
        browser.find_element(By.ID, "pg-task").send_keys("Tell the customer about the refund")
        browser.find_element(By.ID, "pg-run").click()

        # Steps arrive over the stream; the held call gets its buttons in place.
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-role=approve]"), 30, message="the held call")
        panel = browser.find_element(By.CSS_SELECTOR, ".run-panel")
        assert "#1 observe" in panel.text and "calls email_send" in panel.text
        assert "customer@example.test" in panel.text
        screenshots(browser, "playground-held")
        browser.find_element(By.CSS_SELECTOR, "[data-role=approve]").click()
        wait_for(
            lambda: "Sent the refund e-mail" in browser.find_element(By.CSS_SELECTOR, "[data-role=answer]").text,
            30,
            message="the answer",
        )
        assert browser.find_element(By.CSS_SELECTOR, "[data-role=status]").text == "completed"
        assert screenshots(browser, "playground-done")["desktop"] == 0

        execution = Execution.objects.get(agent=mailer)
        assert execution.status == "completed" and execution.trigger_data == {"source": "console playground"}
        approval = ApprovalRequest.objects.get(execution=execution)
        assert (approval.status, approval.resolved_by) == ("approved", operator)

        # Re-run from the trace: same input, a new run on the current version.
        providers_at_fake.script(text("Nothing to send this time."))
        browser.find_element(By.CSS_SELECTOR, ".run-panel h2 a").click()
        wait_for(lambda: browser.find_elements(By.ID, "rerun"), 10, message="the trace")
        browser.find_element(By.ID, "rerun").click()
        wait_for(lambda: Execution.objects.filter(agent=mailer).count() == 2, 10, message="the re-run")
        again = Execution.objects.filter(agent=mailer).exclude(pk=execution.pk).get()
        assert again.input == execution.input and again.trigger_data["rerun_of"] == str(execution.pk)
        wait_for(lambda: str(again.pk) in browser.current_url, 10, message="the new run's trace")

        # The unpublished draft, chosen in the playground: an ordinary run recorded as a draft.
        from selenium.webdriver.support.ui import Select

        providers_at_fake.script(text("Answered by the draft."))
        browser.get(f"{base}/admin/agents/agent/{mailer.pk}/playground/")
        wait_for(lambda: browser.find_elements(By.ID, "pg-task"), 10, message="the playground")
        Select(browser.find_element(By.ID, "pg-version")).select_by_value("draft")
        browser.find_element(By.ID, "pg-task").send_keys("Say hello from the draft")
        browser.find_element(By.ID, "pg-run").click()
        wait_for(
            lambda: any(
                "Answered by the draft" in e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-role=answer]")
            ),
            30,
            message="the draft's answer",
        )
        assert browser.find_element(By.CSS_SELECTOR, ".run-panel h2").text.startswith("Draft (unpublished)")
        draft_run = Execution.objects.get(agent=mailer, input__task="Say hello from the draft")
        assert draft_run.agent_version_id is None and draft_run.status == "completed"
        assert screenshots(browser, "playground-draft")["desktop"] == 0


def test_agent_form_shows_json_errors_in_place(live_server, browser, operator, mailer):
    """Issue #19: a bad JSON text and a schema problem are shown next to their fields, with
    the parser's position and the validator's path; what was typed stays."""
    from selenium.webdriver.common.by import By

    admin_login(browser, live_server.url, operator)
    browser.get(f"{live_server.url}/admin/agents/agent/{mailer.pk}/change/")
    wait_for(lambda: browser.find_elements(By.ID, "id_llm_extra"), 10, message="the agent form")
    for details in browser.find_elements(By.CSS_SELECTOR, "#content details"):
        browser.execute_script("arguments[0].open = true", details)
    broken = '{"seed": 7,\n "x": }'
    schema = '{"type": "object", "properties": {"when": {"type": "wrong"}}}'
    for field, value in (("id_llm_extra", broken), ("id_input_schema", schema)):
        box = browser.find_element(By.ID, field)
        browser.execute_script("arguments[0].value = arguments[1]", box, value)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit][name=_continue]").click()
    wait_for(lambda: browser.find_elements(By.ID, "id_llm_extra_error"), 10, message="the form's errors")

    extra = browser.find_element(By.CSS_SELECTOR, ".form-row.field-llm_extra")
    assert "Not valid JSON: Expecting value at line 2, column 7." in extra.text
    assert browser.find_element(By.ID, "id_llm_extra").get_attribute("value") == broken
    schema_row = browser.find_element(By.CSS_SELECTOR, ".form-row.field-input_schema")
    assert schema_row.is_displayed()  # its section opened by itself
    assert "(at properties/when/type)" in schema_row.text
    assert browser.find_element(By.ID, "id_name").get_attribute("value") == "Refund mailer"
    assert screenshots(browser, "agent-form-errors")["desktop"] == 0
    # The desktop pictures again, scrolled to each error (a resize keeps the scroll offset, not the place).
    for name, row in (("agent-form-errors", "field-llm_extra"), ("agent-form-errors-schema", "field-input_schema")):
        browser.execute_script(f"document.querySelector('.{row}').scrollIntoView({{block: 'center'}})")
        browser.save_screenshot(str(ARTIFACTS / f"console-{name}-desktop.png"))
    mailer.refresh_from_db()
    assert mailer.llm_extra == {}  # nothing saved
