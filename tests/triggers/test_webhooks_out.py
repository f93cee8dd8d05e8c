"""Events out: endpoints (secret once, SSRF guard, event filters), signed deliveries to a local
receiver, retries with backoff, giving up, the delivery log and the event log."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from agents.services import agent_create
from executions.events import event_emit
from executions.models import PlatformEvent, WebhookDelivery, WebhookEndpoint
from executions.webhooks.delivery import deliveries_due, webhook_delivery_attempt
from executions.webhooks.services import webhook_endpoint_create
from tests.conftest import assert_error
from tests.factories import UserFactory
from tests.fakes.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver(settings):
    with WebhookReceiver() as running:
        settings.AGENTRY_SSRF_ALLOW = [running.allow_entry]
        settings.AGENTRY_WEBHOOK_RETRY_DELAYS = [0.2, 0.4]
        yield running


def _emit(org, django_capture_on_commit_callbacks, event_type="ai.execution.completed", **payload):
    with django_capture_on_commit_callbacks(execute=True):
        event_emit(organization_id=org.pk, event_type=event_type, payload=payload or {"execution_id": "e1"})
    return PlatformEvent.objects.filter(organization=org).latest("created_at")


def test_create_shows_the_secret_once(org, adam, receiver, client_for):
    api = client_for(adam)
    response = api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["ai.execution.*"]}, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["secret_last4"] == secret[-4:]
    for read in (api.get(f"/api/v1/webhooks/{created['id']}/"), api.get("/api/v1/webhooks/")):
        assert secret not in read.content.decode() and read.status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM executions_webhookendpoint WHERE id = %s", [created["id"]])
        assert cursor.fetchone()[0] != secret
    rotated = api.post(f"/api/v1/webhooks/{created['id']}/rotate-secret/").json()["secret"]
    assert rotated != secret and WebhookEndpoint.objects.get().secret == rotated


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://2130706433/hook",
        "http://metadata.google.internal/",
        "ftp://example.com/hook",
        "https://user:pw@example.com/hook",
        "not a url",
    ],
)
def test_private_and_odd_urls_are_refused(org, adam, client_for, url):
    error = assert_error(client_for(adam).post("/api/v1/webhooks/", {"url": url}, format="json"), 400, "InvalidInput")
    assert "url" in error["details"]["validation_errors"]
    assert not WebhookEndpoint.objects.exists()


def test_event_filters_that_can_never_match_are_refused(org, adam, receiver, client_for):
    # (crm.contact.* is the CRM tools' domain events since issue 20: a webhook may take those.)
    for events in (["crm.deal.*"], ["ai.execution"], ["ai.billing.*"], "ai.*"):
        body = {"url": receiver.url, "events": events}
        assert_error(client_for(adam).post("/api/v1/webhooks/", body, format="json"), 400, "InvalidInput")
    assert not WebhookEndpoint.objects.exists()


def test_who_may_manage_endpoints(org, adam, mia, oscar, receiver, client_for):
    endpoint, _ = webhook_endpoint_create(actor=None, organization=org, data={"url": receiver.url})
    url = f"/api/v1/webhooks/{endpoint.pk}/"
    assert_error(client_for(mia).get("/api/v1/webhooks/"), 403, "InsufficientPermissions")
    assert_error(client_for(adam, scopes=["agents:read", "agents:write"]).get(url), 403, "AgentAccessDenied")
    for method in ("get", "patch", "delete"):
        assert_error(getattr(client_for(oscar), method)(url), 404, "NotFound")
    assert_error(client_for(oscar).get(url + "deliveries/"), 404, "NotFound")
    assert client_for(oscar).get("/api/v1/webhooks/").json()["total"] == 0
    assert client_for(adam).patch(url, {"is_active": False}, format="json").json()["is_active"] is False
    assert client_for(adam).delete(url).status_code == 204


def test_events_reach_matching_endpoints_signed(org, alice, receiver, django_capture_on_commit_callbacks):
    wanted, secret = webhook_endpoint_create(
        actor=None, organization=org, data={"url": receiver.url, "events": ["ai.agent.*"]}
    )
    webhook_endpoint_create(actor=None, organization=org, data={"url": receiver.url, "events": ["ai.execution.*"]})
    webhook_endpoint_create(actor=None, organization=org, data={"url": receiver.url, "is_active": False})
    with django_capture_on_commit_callbacks(execute=True):
        agent = agent_create(actor=None, organization=org, data={"name": "Announcer", "system_prompt": "x"})
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.endpoint == wanted and delivery.event_type == "ai.agent.created" and delivery.status == "pending"
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 1 and delivery.response_status == 200
    [got] = receiver.received
    assert got.signature_ok(secret) and not got.signature_ok("whsec_other")
    assert got.headers["x-agentry-event"] == "ai.agent.created" and got.headers["x-agentry-delivery"] == str(
        delivery.pk
    )
    assert got.json["type"] == "ai.agent.created" and got.json["data"]["name"] == "Announcer"
    assert got.json["agent_id"] == str(agent.pk) and got.json["organization_id"] == str(org.pk)
    assert abs(int(got.headers["x-agentry-timestamp"]) - time.time()) < 30
    # A delivery is sent once: another attempt finds nothing to do.
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None and len(receiver.received) == 1


def test_failed_attempts_are_retried_with_backoff(org, adam, receiver, client_for, django_capture_on_commit_callbacks):
    receiver.statuses = [500, 503]
    endpoint, secret = webhook_endpoint_create(actor=None, organization=org, data={"url": receiver.url})
    event = _emit(org, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get(event=event)

    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "retrying" and delivery.response_status == 500
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 0.1 < wait <= 0.23  # the first delay, with at most 10 % jitter
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None  # not due yet: nothing sent
    assert len(receiver.received) == 1

    time.sleep(wait + 0.05)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "retrying" and delivery.response_status == 503
    assert 0.3 < (delivery.next_attempt_at - timezone.now()).total_seconds() <= 0.45  # backoff grew
    time.sleep(0.5)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 3 and delivery.delivered_at
    assert [h["status_code"] for h in delivery.history] == [500, 503, 200]
    assert len(receiver.of_delivery(delivery.pk)) == 3 and receiver.verified(secret)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.last_success_at and endpoint.last_failure_at

    log = client_for(adam).get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/").json()
    assert log["total"] == 1
    entry = log["results"][0]
    assert entry["status"] == "succeeded" and entry["attempts"] == 3 and entry["event_id"] == str(event.pk)
    assert [h["attempt"] for h in entry["history"]] == [1, 2, 3]
    assert client_for(adam).get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/?status=failed").json()["total"] == 0


def test_gives_up_after_the_last_delay(org, receiver, django_capture_on_commit_callbacks, settings):
    settings.AGENTRY_WEBHOOK_RETRY_DELAYS = [0.05]
    receiver.default_status = 500
    endpoint, _ = webhook_endpoint_create(actor=None, organization=org, data={"url": receiver.url})
    delivery = WebhookDelivery.objects.get(event=_emit(org, django_capture_on_commit_callbacks))
    webhook_delivery_attempt(delivery_id=delivery.pk)
    time.sleep(0.1)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 2 and delivery.next_attempt_at is None
    assert "500" in delivery.error
    time.sleep(0.1)
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None and len(receiver.received) == 2
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 2


def test_the_guard_applies_again_at_delivery_time(org, receiver, settings, django_capture_on_commit_callbacks):
    webhook_endpoint_create(actor=None, organization=org, data={"url": receiver.url})
    delivery = WebhookDelivery.objects.get(event=_emit(org, django_capture_on_commit_callbacks))
    settings.AGENTRY_SSRF_ALLOW = []  # the exception was withdrawn after the endpoint was saved
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and "loopback" in delivery.error and receiver.received == []


def test_lost_and_stuck_deliveries_are_found_by_the_beat_job(org, receiver, django_capture_on_commit_callbacks):
    webhook_endpoint_create(actor=None, organization=org, data={"url": receiver.url})
    delivery = WebhookDelivery.objects.get(event=_emit(org, django_capture_on_commit_callbacks))
    assert delivery.pk not in deliveries_due()  # just queued: left to its message
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=1))
    assert delivery.pk in deliveries_due()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="sending", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert delivery.pk in deliveries_due()
    webhook_delivery_attempt(delivery_id=delivery.pk)  # a worker died mid-send: sent again
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded"


def test_event_log_lists_the_organization_events(
    org, other_org, alice, oscar, client_for, django_capture_on_commit_callbacks
):
    _emit(org, django_capture_on_commit_callbacks, "ai.execution.completed")
    _emit(org, django_capture_on_commit_callbacks, "ai.approval.requested")
    theirs = _emit(other_org, django_capture_on_commit_callbacks, "ai.execution.failed")
    api = client_for(alice)
    log = api.get("/api/v1/event-log/").json()
    assert log["total"] == 2 and {e["type"] for e in log["results"]} == {
        "ai.execution.completed",
        "ai.approval.requested",
    }
    assert api.get("/api/v1/event-log/?type=ai.approval.requested").json()["total"] == 1
    assert_error(api.get(f"/api/v1/event-log/{theirs.pk}/"), 404, "NotFound")
    assert client_for(oscar).get(f"/api/v1/event-log/{theirs.pk}/").json()["type"] == "ai.execution.failed"


def test_admin_shows_the_secret_once_and_refuses_private_urls(org, receiver):
    root = UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    form = {"organization": str(org.pk), "url": "http://10.1.2.3/x", "description": "", "events": "", "is_active": "on"}
    refused = client.post("/admin/executions/webhookendpoint/add/", form)
    assert refused.status_code == 200 and b"private address" in refused.content
    form["url"] = receiver.url
    added = client.post("/admin/executions/webhookendpoint/add/", form, follow=True)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.encode() in added.content  # in the message, once
    page = client.get(f"/admin/executions/webhookendpoint/{endpoint.pk}/change/")
    assert endpoint.secret.encode() not in page.content and endpoint.secret_last4.encode() in page.content
    assert client.get("/admin/executions/webhookdelivery/").status_code == 200
