"""Sending one delivery: signed POST, SSRF guard, retries with backoff, the attempt log.

At least once: a delivery is claimed with a conditional UPDATE (status ``sending`` and a
lease), so two workers never send the same attempt at once; a worker that dies mid-send
leaves the lease to expire and ``webhooks_retry_due`` sends it again. Receivers deduplicate
on ``X-Agentry-Delivery``.

The target URL goes through the SSRF guard (``config.ssrf.check_url``) when the
endpoint is saved and again before every attempt (DNS can change), and the connection is
made to the address that was checked, so a rebinding answer cannot redirect it. Redirects
are not followed: a 3xx is a failed attempt.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config.ssrf import UrlRefused, check_url
from executions.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from executions.triggers.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_for
from executions.webhooks.tasks import webhook_deliver_task

logger = logging.getLogger(__name__)

DELIVER_TASK = "executions.webhook_deliver"
DEFAULT_RETRY_DELAYS = (10, 60, 300, 1800, 7200)  # seconds after attempts 1, 2, …; then give up
LEASE_SECONDS = 60
TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_CHARS = 2000
# Retries further away than this are left to the beat job rather than held by a worker.
MAX_COUNTDOWN_SECONDS = 60


def retry_delays() -> tuple[float, ...]:
    return tuple(float(d) for d in getattr(settings, "AGENTRY_WEBHOOK_RETRY_DELAYS", DEFAULT_RETRY_DELAYS))


def url_problem(url: Any) -> str | None:
    """Why deliveries may not go to ``url`` (None when they may). The one place that decides,
    using the tools' guard: http(s) only, no credentials, public addresses only unless
    settings.AGENTRY_SSRF_ALLOW lists the target."""
    if not isinstance(url, str) or not url.strip():
        return "A URL is required."
    try:
        check_url(url)
    except UrlRefused as exc:
        return str(exc)
    return None


def enqueue_delivery(delivery_id: Any, *, countdown: float | None = None) -> None:
    """Queue an attempt once the surrounding transaction commits (at once outside one)."""

    def send() -> None:
        webhook_deliver_task.apply_async(args=[str(delivery_id)], queue="default", countdown=countdown)

    transaction.on_commit(send)


def event_body(delivery: WebhookDelivery) -> bytes:
    """The exact bytes that are signed and sent (sorted keys, no spaces)."""
    event = delivery.event
    document = {
        "id": str(event.pk),
        "type": event.event_type,
        "created_at": event.created_at.isoformat(),
        "organization_id": str(event.organization_id),
        "agent_id": str(event.agent_id) if event.agent_id else None,
        "execution_id": str(event.execution_id) if event.execution_id else None,
        "data": event.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Sent:
    status_code: int | None = None
    body: str = ""
    error: str = ""
    permanent: bool = False  # no point retrying (the address is refused)
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _host_header(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return host if url.port is None else f"{host}:{url.port}"


def send_signed(*, url: str, body: bytes, headers: dict[str, str]) -> Sent:
    started = time.monotonic()
    try:
        target, ip = check_url(url)
    except UrlRefused as exc:
        return Sent(error=str(exc), permanent=True)
    extensions: dict[str, Any] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host  # certificates are checked against the name
    try:
        with httpx.Client(trust_env=False, follow_redirects=False, timeout=TIMEOUT_SECONDS) as client:
            request = client.build_request(
                "POST",
                target.copy_with(host=str(ip)),
                content=body,
                headers={**headers, "Host": _host_header(target)},
                extensions=extensions,
            )
            response = client.send(request, stream=True)
            try:
                text = b""
                for chunk in response.iter_bytes():
                    text += chunk
                    if len(text) >= MAX_RESPONSE_CHARS:
                        break  # only the start of an answer is kept for the log
            finally:
                response.close()
            return Sent(
                status_code=response.status_code,
                body=text[:MAX_RESPONSE_CHARS].decode("utf-8", errors="replace"),
                duration_ms=int((time.monotonic() - started) * 1000),
            )
    except httpx.TimeoutException:
        return Sent(
            error=f"No answer within {TIMEOUT_SECONDS:.0f} s.", duration_ms=int((time.monotonic() - started) * 1000)
        )
    except httpx.HTTPError as exc:
        return Sent(
            error=f"Could not reach the endpoint: {type(exc).__name__}.",
            duration_ms=int((time.monotonic() - started) * 1000),
        )


def _claim(delivery_id: Any) -> bool:
    now = timezone.now()
    due = Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]) & (
        # A countdown message may wake a hair early; one that is early by more (another host's
        # clock) finds nothing and the beat job sends the delivery instead.
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + timedelta(seconds=0.05))
    )
    stale = Q(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)
    return bool(
        WebhookDelivery.objects.filter(due | stale, pk=delivery_id).update(
            status=DeliveryStatus.SENDING,
            lease_expires_at=now + timedelta(seconds=LEASE_SECONDS),
            attempts=F("attempts") + 1,
            last_attempt_at=now,
        )
    )


def webhook_delivery_attempt(*, delivery_id: Any) -> WebhookDelivery | None:
    """Make one attempt if the delivery is due and nobody else is sending it."""
    if not _claim(delivery_id):
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        sent = Sent(error="The endpoint was switched off.", permanent=True)
    else:
        body = event_body(delivery)
        stamp = str(int(time.time()))
        sent = send_signed(
            url=endpoint.url,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Agentry-Webhooks/1.0",
                "X-Agentry-Event": delivery.event_type,
                "X-Agentry-Delivery": str(delivery.pk),
                TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: signature_for(endpoint.secret, stamp, body),
            },
        )
    _record(delivery, endpoint, sent)
    return delivery


def _record(delivery: WebhookDelivery, endpoint: WebhookEndpoint, sent: Sent) -> None:
    now = timezone.now()
    delays = retry_delays()
    entry = {
        "attempt": delivery.attempts,
        "at": now.isoformat(),
        "status_code": sent.status_code,
        "error": sent.error,
        "duration_ms": sent.duration_ms,
    }
    delivery.history = [*delivery.history, entry]
    delivery.response_status, delivery.response_body = sent.status_code, sent.body
    delivery.error = sent.error or ("" if sent.ok else f"The endpoint answered {sent.status_code}.")
    delivery.duration_ms, delivery.lease_expires_at = sent.duration_ms, None
    countdown = None
    if sent.ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, now, None
    elif sent.permanent or delivery.attempts > len(delays):
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    else:
        # Exponential steps from settings, with a little jitter so a recovering receiver is
        # not hit by every retry at the same second.
        delay = delays[delivery.attempts - 1] * random.uniform(1.0, 1.1)  # noqa: S311
        delivery.status, delivery.next_attempt_at = DeliveryStatus.RETRYING, now + timedelta(seconds=delay)
        countdown = delay if delay <= MAX_COUNTDOWN_SECONDS else None
    with transaction.atomic():
        delivery.save(
            update_fields=[
                "history", "response_status", "response_body", "error", "duration_ms", "lease_expires_at",
                "status", "delivered_at", "next_attempt_at",
            ]
        )  # fmt: skip
        if sent.ok:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(last_success_at=now, consecutive_failures=0)
        else:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                last_failure_at=now, consecutive_failures=F("consecutive_failures") + 1
            )
        if countdown is not None:
            enqueue_delivery(delivery.pk, countdown=countdown)


def deliveries_due(*, limit: int = 500) -> list[Any]:
    """Open deliveries whose message was lost or whose retry is too far out for a countdown,
    and attempts whose worker died mid-send (lease expired)."""
    now = timezone.now()
    # A grace period: a delivery due just now is usually already on the queue.
    waiting = Q(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
        next_attempt_at__lte=now - timedelta(seconds=10),
    )
    stale = Q(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)
    return list(WebhookDelivery.objects.filter(waiting | stale).values_list("pk", flat=True)[:limit])


def webhook_delivery_retry_now(*, delivery: WebhookDelivery) -> bool:
    """Send a finished or waiting delivery again now (the admin's "retry" action). Returns
    False when an attempt is in flight."""
    with transaction.atomic():
        updated = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .exclude(status=DeliveryStatus.SENDING)
            .update(status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now())
        )
        if updated:
            enqueue_delivery(delivery.pk)
    return bool(updated)
