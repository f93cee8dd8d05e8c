"""Webhook endpoints of an organization and the fan-out of platform events to them."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.access import Actor
from accounts.services import activity_record
from agents.triggers.patterns import pattern_matches, pattern_problem
from billing.quotas import plan_feature_require
from config.api.errors import InvalidInput
from executions.models import DeliveryStatus, PlatformEvent, WebhookDelivery, WebhookEndpoint
from executions.triggers.signing import secret_generate
from executions.webhooks.delivery import enqueue_delivery, url_problem

logger = logging.getLogger(__name__)

FIELDS = frozenset({"url", "events", "description", "is_active"})
MAX_ENDPOINTS = 20


def _validated(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    errors: dict[str, list[str]] = {key: ["Unknown field."] for key in sorted(set(data) - FIELDS)}
    clean: dict[str, Any] = {}
    if "url" in data or not partial:
        url = data.get("url")
        problem = url_problem(url) if isinstance(url, str) and len(url) <= 500 else "A URL of at most 500 characters."
        if problem:
            errors["url"] = [problem]
        else:
            clean["url"] = url
    if "events" in data:
        events = data["events"]
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events) or len(events) > 50:
            errors["events"] = ["A list of at most 50 event patterns such as ai.execution.*."]
        else:
            for index, pattern in enumerate(events):
                problem = pattern_problem(pattern, allow_platform=True)
                if problem:
                    errors[f"events.{index}"] = [problem]
            clean["events"] = list(dict.fromkeys(events))
    if "description" in data:
        if not isinstance(data["description"], str) or len(data["description"]) > 200:
            errors["description"] = ["A string of at most 200 characters."]
        else:
            clean["description"] = data["description"]
    if "is_active" in data:
        if not isinstance(data["is_active"], bool):
            errors["is_active"] = ["Must be true or false."]
        else:
            clean["is_active"] = data["is_active"]
    if errors:
        raise InvalidInput("The webhook endpoint is invalid.", validation_errors=errors)
    return clean


def _record(actor: Actor | None, endpoint: WebhookEndpoint, action: str, by_user: Any, summary: dict) -> None:
    activity_record(
        organization=endpoint.organization,
        actor=actor,
        user=by_user,
        action=action,
        target=endpoint,
        request_summary=summary,
    )


@transaction.atomic
def webhook_endpoint_create(
    *, actor: Actor | None, data: dict[str, Any], organization: Any = None, by_user: Any = None
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it with its secret, which is never shown again."""
    organization = actor.organization if actor is not None else organization
    plan_feature_require(
        organization=organization, feature="webhooks", user=actor.user if actor is not None else by_user
    )
    clean = _validated(data, partial=False)
    if WebhookEndpoint.objects.filter(organization=organization).count() >= MAX_ENDPOINTS:
        raise InvalidInput(f"An organization has at most {MAX_ENDPOINTS} webhook endpoints.")
    raw = secret_generate("whsec")
    endpoint = WebhookEndpoint.objects.create(
        organization=organization,
        secret=raw,
        secret_last4=raw[-4:],
        created_by=actor.user if actor is not None else by_user,  # type: ignore[misc]
        **clean,
    )
    _record(actor, endpoint, "webhook.created", by_user, {"url": endpoint.url, "events": endpoint.events})
    return endpoint, raw


@transaction.atomic
def webhook_endpoint_update(
    *, actor: Actor | None, endpoint: WebhookEndpoint, data: dict[str, Any], by_user: Any = None
) -> WebhookEndpoint:
    clean = _validated(data, partial=True)
    for key, value in clean.items():
        setattr(endpoint, key, value)
    if clean.get("is_active"):
        endpoint.consecutive_failures = 0
        clean["consecutive_failures"] = 0
    if clean:
        endpoint.save(update_fields=[*clean, "updated_at"])
    _record(
        actor, endpoint, "webhook.updated", by_user, {k: v for k, v in clean.items() if k != "consecutive_failures"}
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(
    *, actor: Actor | None, endpoint: WebhookEndpoint, by_user: Any = None
) -> tuple[WebhookEndpoint, str]:
    raw = secret_generate("whsec")
    endpoint.secret, endpoint.secret_last4 = raw, raw[-4:]
    endpoint.save(update_fields=["secret", "secret_last4", "updated_at"])
    _record(actor, endpoint, "webhook.secret_rotated", by_user, {})
    return endpoint, raw


@transaction.atomic
def webhook_endpoint_delete(*, actor: Actor | None, endpoint: WebhookEndpoint, by_user: Any = None) -> None:
    _record(actor, endpoint, "webhook.deleted", by_user, {"url": endpoint.url})
    endpoint.delete()


def endpoint_wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return not endpoint.events or any(pattern_matches(p, event_type) for p in endpoint.events)


def webhook_deliveries_create(*, event: PlatformEvent) -> list[WebhookDelivery]:
    """One delivery per active endpoint of the event's organization that wants it, queued
    after commit. Called right after the event is logged (executions.events)."""
    endpoints = [
        e
        for e in WebhookEndpoint.objects.filter(organization_id=event.organization_id, is_active=True)
        if endpoint_wants(e, event.event_type)
    ]
    if not endpoints:
        return []
    now = timezone.now()
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    organization_id=event.organization_id,
                    endpoint=endpoint,
                    event=event,
                    event_type=event.event_type,
                    status=DeliveryStatus.PENDING,
                    next_attempt_at=now,
                    created_at=now,
                )
                for endpoint in endpoints
            ]
        )
        for delivery in deliveries:
            enqueue_delivery(delivery.pk)
    return deliveries


def webhook_deliveries_for_event_safely(event: PlatformEvent) -> None:
    """The event log's hook: never let a webhook problem break the change that emitted it."""
    try:
        webhook_deliveries_create(event=event)
    except Exception:
        # The event row is written; webhooks_retry_due cannot recreate deliveries, so say so.
        logger.exception("could not queue webhook deliveries of event %s", event.pk)
