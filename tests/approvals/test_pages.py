"""The approver pages: who sees them, what they show, how decisions are posted."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils.html import escape

from approvals.models import ApprovalRequest
from executions.models import Execution
from tests.approvals.helpers import EMAIL, pending_approvals

pytestmark = pytest.mark.django_db


@pytest.fixture
def approval(make_agent, org, synced_tools) -> ApprovalRequest:
    agent = make_agent(name="Mailer", allowed_tools=["email_send"])
    return pending_approvals(agent, org)[0]


def logged_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf(client: Client, url: str) -> str:
    client.get(url)
    return client.cookies["csrftoken"].value


def test_login_is_required(approval, client):
    for url in ("/approvals/", f"/approvals/{approval.pk}/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(f"/accounts/login/?next={url}")
    response = client.post(f"/approvals/{approval.pk}/approve/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_the_list_shows_pending_requests_with_risk_agent_age_and_expiry(approval, adam):
    response = logged_in(adam).get("/approvals/")
    page = response.content.decode()
    assert response.status_code == 200 and response["X-Frame-Options"] == "DENY"
    assert 'name="viewport"' in page  # usable on a phone
    assert "Send an email to customer@example.test" in page and "Mailer" in page
    assert 'class="risk risk-high"' in page and "in 23" in page  # expires in 23 hours, …
    assert f"/approvals/{approval.pk}/" in page


def test_the_detail_shows_the_run_so_far_and_the_exact_parameters(approval, adam):
    page = logged_in(adam).get(f"/approvals/{approval.pk}/").content.decode()
    assert "Refund customer 0" in page  # the task and the observe step
    assert "email_send" in page and "awaiting_approval" in page
    approval.refresh_from_db()  # jsonb keeps its own key order
    assert json.dumps(approval.action_params, indent=2).replace('"', "&quot;") in page  # editable JSON, escaped
    assert 'id="approve"' in page and 'id="deny"' in page and "csrfmiddlewaretoken" in page


def test_people_without_the_resolve_permission_get_nothing(approval, mia, vic, oscar):
    for user in (mia, vic):
        client = logged_in(user)
        assert client.get("/approvals/").status_code == 403
        assert client.get(f"/approvals/{approval.pk}/").status_code == 404
    other = logged_in(oscar)  # an admin, of another organization
    assert other.get("/approvals/").status_code == 200
    assert str(approval.pk) not in other.get("/approvals/").content.decode()
    assert other.get(f"/approvals/{approval.pk}/").status_code == 404
    token = csrf(other, "/approvals/")
    response = other.post(f"/approvals/{approval.pk}/approve/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 404
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_decisions_are_post_only_and_csrf_protected(approval, adam):
    client = logged_in(adam)
    assert client.get(f"/approvals/{approval.pk}/approve/").status_code == 405
    assert client.post(f"/approvals/{approval.pk}/approve/", {"note": "no token"}).status_code == 403
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_approve_with_edited_json(approval, adam):
    client = logged_in(adam)
    token = csrf(client, f"/approvals/{approval.pk}/")
    edited = {**EMAIL, "subject": "Your refund, edited"}
    response = client.post(
        f"/approvals/{approval.pk}/approve/",
        {"csrfmiddlewaretoken": token, "params": json.dumps(edited), "note": "tone"},
        follow=True,
    )
    assert response.status_code == 200 and "Approved:" in response.content.decode()
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.action_params == edited and approval.resolution_note == "tone"
    assert Execution.objects.get(pk=approval.execution_id).status == "running"
    again = client.post(f"/approvals/{approval.pk}/deny/", {"csrfmiddlewaretoken": token})
    assert again.status_code == 409 and "already approved" in again.content.decode()


def test_unchanged_json_approves_as_asked(approval, adam):
    client = logged_in(adam)
    token = csrf(client, f"/approvals/{approval.pk}/")
    reformatted = json.dumps(EMAIL)  # different whitespace, same value
    client.post(f"/approvals/{approval.pk}/approve/", {"csrfmiddlewaretoken": token, "params": reformatted})
    approval.refresh_from_db()
    assert approval.status == "approved" and not approval.params_edited


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"to": "x", "subject": "s", "body": "b"}), "do not match"),
        # What PostgreSQL cannot store, and what Python's json decoder recurses on: 400s, not 500s.
        (json.dumps({**EMAIL, "body": "hello\u0000"}), "NUL characters"),
        ('{"to": ' + "[" * 1000 + "]" * 1000 + "}", "deeper than 64 levels"),
    ],
)
def test_bad_json_is_shown_back_and_nothing_is_approved(approval, adam, params, message):
    client = logged_in(adam)
    token = csrf(client, f"/approvals/{approval.pk}/")
    response = client.post(f"/approvals/{approval.pk}/approve/", {"csrfmiddlewaretoken": token, "params": params})
    page = response.content.decode()
    assert response.status_code == 400 and message in page
    assert escape(params) in page  # what they typed, to fix
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_deny_with_a_note(approval, alice):
    client = logged_in(alice)
    token = csrf(client, f"/approvals/{approval.pk}/")
    response = client.post(f"/approvals/{approval.pk}/deny/", {"csrfmiddlewaretoken": token, "note": "wrong customer"})
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    execution = Execution.objects.get(pk=approval.execution_id)
    assert execution.status == "cancelled" and "wrong customer" in execution.error
    page = client.get(f"/approvals/{approval.pk}/").content.decode()
    assert "denied" in page and "wrong customer" in page and 'id="approve"' not in page


def test_a_nul_character_in_a_form_field_is_a_400_and_nothing_is_decided(approval, alice):
    client = logged_in(alice)
    token = csrf(client, f"/approvals/{approval.pk}/")
    response = client.post(f"/approvals/{approval.pk}/deny/", {"csrfmiddlewaretoken": token, "note": "no\x00pe"})
    assert response.status_code == 400 and "note" in response.content.decode()
    approval.refresh_from_db()
    assert approval.status == "pending" and Execution.objects.get(pk=approval.execution_id).status != "cancelled"
