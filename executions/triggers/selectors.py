"""Reads for schedules, refused attempts, webhook endpoints, deliveries and the event log —
always scoped to the actor's organization (another organization's ids are not found)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.access import Actor
from agents.access import visible_agents_q
from agents.models import Agent
from config.api.ids import one_or_not_found
from executions.models import PlatformEvent, ScheduledExecution, TriggerAttempt, WebhookDelivery, WebhookEndpoint


def _visible_agents(actor: Actor) -> Q:
    # The actor's visible agents, and the platform agents the organization uses.
    return Q(agent__in=Agent.objects.filter(visible_agents_q(actor)).values("pk")) | Q(agent__organization__isnull=True)


def schedule_list(*, actor: Actor) -> QuerySet[ScheduledExecution]:
    return (
        ScheduledExecution.objects.filter(organization_id=actor.organization.pk)
        .filter(_visible_agents(actor))
        .select_related("agent", "periodic_task")
    )


def schedule_get(*, actor: Actor, schedule_id: Any) -> ScheduledExecution:
    return one_or_not_found(
        schedule_list(actor=actor), schedule_id, "Schedule not found.", details={"schedule_id": str(schedule_id)}
    )


def trigger_attempt_list(*, actor: Actor) -> QuerySet[TriggerAttempt]:
    return TriggerAttempt.objects.filter(organization_id=actor.organization.pk).filter(
        _visible_agents(actor) | Q(agent__isnull=True)
    )


def webhook_endpoint_list(*, actor: Actor) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(organization_id=actor.organization.pk)


def webhook_endpoint_get(*, actor: Actor, endpoint_id: Any) -> WebhookEndpoint:
    return one_or_not_found(
        webhook_endpoint_list(actor=actor),
        endpoint_id,
        "Webhook endpoint not found.",
        details={"webhook_id": str(endpoint_id)},
    )


def webhook_delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint, organization_id=endpoint.organization_id)


def platform_event_list(*, actor: Actor) -> QuerySet[PlatformEvent]:
    return PlatformEvent.objects.filter(organization_id=actor.organization.pk)


def platform_event_get(*, actor: Actor, event_id: Any) -> PlatformEvent:
    return one_or_not_found(
        platform_event_list(actor=actor), event_id, "Event not found.", details={"event_id": str(event_id)}
    )
