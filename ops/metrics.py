"""Prometheus ``/metrics``: every series computed at scrape time from PostgreSQL and Redis.

Why not in-process counters (``prometheus_client.Counter`` incremented in the runtime)? The
web process that answers the scrape is not the worker process that runs executions, and
gunicorn/uvicorn and Celery each run several processes; per-process counters would need the
multiprocess mode and a shared directory, and would be lost on every restart. The database
already holds every fact (executions, steps, usage records, approvals), so a custom
Collector turns aggregate queries into series on each scrape:

- counters (``*_total``) are counts/sums over all rows still in the database. Pruning old
  executions (``prune_executions``) lowers them; Prometheus treats a decrease as a counter
  reset, so ``rate()`` stays correct apart from the scrape where the prune happened. Usage
  records are never pruned, so token and cost counters only grow.
- histograms are a sliding window: bucket counts over the steps started in the last
  ``HISTOGRAM_WINDOW`` (one SQL query with one ``COUNT(*) FILTER`` per bucket, grouped by
  provider), because ``ExecutionStep.duration_ms`` is a per-row value, not a histogram.
  Read them as "distribution over the last 24 h" (``histogram_quantile`` over the raw
  buckets, not over ``rate()``).
- gauges (pending approvals, live executions by status, queue depth, live workers) are
  current values.

Who sees what: ``METRICS_TOKEN`` and superusers see the whole platform; a bearer token with
the ``admin`` scope sees its own organization; a staff session of an organization admin sees
the organizations they manage. Queue depth and worker count are platform-wide and carry no
tenant data, so every caller gets them.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from redis import Redis

from accounts.admin_scoping import managed_organization_ids
from accounts.authentication import BearerTokenAuthentication, TokenFailed
from accounts.models import Scope
from approvals.models import ApprovalRequest, ApprovalStatus
from billing.models import UsageRecord
from billing.usage import SANDBOX_PROVIDER
from config.api.errors import error_response
from config.workers import live_workers
from executions.models import TERMINAL_STATUSES, Execution, ExecutionStep, StepType

logger = logging.getLogger(__name__)

HISTOGRAM_WINDOW = timedelta(hours=24)
# Seconds. LLM calls take 0.3 to 30 s; tool steps can be milliseconds; a step rarely passes 2 min.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

ALL_ORGANIZATIONS = None  # the scope of a platform-wide caller


class AgentryCollector:
    """Yields the Agentry series; ``organization_ids`` None means every organization."""

    def __init__(self, *, organization_ids: list[Any] | None = None):
        self.organization_ids = organization_ids

    def _scoped(self, qs, path: str = "organization_id"):
        if self.organization_ids is None:
            return qs
        return qs.filter(**{f"{path}__in": self.organization_ids})

    def collect(self) -> Iterator[Metric]:
        yield from self._executions()
        yield from self._latency()
        yield from self._usage()
        yield from self._tool_calls()
        yield from self._approvals()
        yield from self._queues()

    def _executions(self) -> Iterator[Metric]:
        rows = (
            self._scoped(Execution.objects.all())
            .values("status")
            .annotate(n=Count("id"), started=Count("id", filter=Q(started_at__isnull=False)))
            .order_by()
        )
        started = CounterMetricFamily(
            "agentry_executions_started", "Executions a worker started, by current status.", labels=["status"]
        )
        finished = CounterMetricFamily(
            "agentry_executions_finished", "Executions that ended, by final status.", labels=["status"]
        )
        current = GaugeMetricFamily(
            "agentry_executions_active", "Executions not yet ended, by status.", labels=["status"]
        )
        for row in rows:
            started.add_metric([row["status"]], row["started"])
            if row["status"] in TERMINAL_STATUSES:
                finished.add_metric([row["status"]], row["n"])
            else:
                current.add_metric([row["status"]], row["n"])
        yield from (started, finished, current)

    def _latency(self) -> Iterator[Metric]:
        since = timezone.now() - HISTOGRAM_WINDOW
        buckets = {f"le_{i}": Count("id", filter=Q(duration_ms__lte=b * 1000)) for i, b in enumerate(LATENCY_BUCKETS)}
        rows = (
            self._scoped(
                ExecutionStep.objects.filter(started_at__gte=since, duration_ms__isnull=False),
                "execution__organization_id",
            )
            .values("provider", "step_type")
            .annotate(total=Count("id"), sum_ms=Sum("duration_ms"), **buckets)
            .order_by()
        )
        step = HistogramMetricFamily(
            "agentry_step_duration_seconds",
            f"Step durations over the last {HISTOGRAM_WINDOW}, by step type and provider (none for tool steps).",
            labels=["step_type", "provider"],
        )
        llm: dict[str, dict[str, float]] = {}
        for row in rows:
            provider = row["provider"] or "none"
            step.add_metric([row["step_type"], provider], _buckets(row), row["sum_ms"] / 1000)
            if row["step_type"] == StepType.THINK:
                # Several step types can share a provider; the LLM histogram is think steps only.
                acc = llm.setdefault(provider, {"total": 0, "sum_ms": 0})
                for key in [*buckets, "total", "sum_ms"]:
                    acc[key] = acc.get(key, 0) + row[key]
        yield step
        llm_family = HistogramMetricFamily(
            "agentry_llm_latency_seconds",
            f"LLM call (think step) durations over the last {HISTOGRAM_WINDOW}, by provider.",
            labels=["provider"],
        )
        for provider, acc in llm.items():
            llm_family.add_metric([provider], _buckets(acc), acc["sum_ms"] / 1000)
        yield llm_family

    def _usage(self) -> Iterator[Metric]:
        rows = (
            self._scoped(UsageRecord.objects.all())
            .values("provider", "model")
            .annotate(
                # The offline sandbox's answers are no model calls (billing.usage): its
                # series keeps its tokens, at 0 calls.
                calls=Count("id", filter=~Q(provider=SANDBOX_PROVIDER)),
                tin=Sum("tokens_input"),
                tout=Sum("tokens_output"),
                tcached=Sum("tokens_cached"),
                cost=Sum("cost"),
            )
            .order_by()
        )
        calls = CounterMetricFamily(
            "agentry_llm_calls", "Model calls (the offline sandbox's answers are none).", labels=["provider", "model"]
        )
        tokens = CounterMetricFamily(
            "agentry_tokens", "Tokens used, by direction.", labels=["provider", "model", "direction"]
        )
        cost = CounterMetricFamily("agentry_cost_usd", "Cost of LLM calls in USD.", labels=["provider", "model"])
        for row in rows:
            labels = [row["provider"], row["model"]]
            calls.add_metric(labels, row["calls"])
            tokens.add_metric([*labels, "input"], row["tin"] or 0)
            tokens.add_metric([*labels, "output"], row["tout"] or 0)
            tokens.add_metric([*labels, "cached"], row["tcached"] or 0)
            cost.add_metric(labels, float(row["cost"] or 0))
        yield from (calls, tokens, cost)

    def _tool_calls(self) -> Iterator[Metric]:
        rows = (
            self._scoped(ExecutionStep.objects.filter(step_type=StepType.ACT), "execution__organization_id")
            .values("status")
            .annotate(n=Count("id"))
            .order_by()
        )
        family = CounterMetricFamily("agentry_tool_calls", "Tool calls (act steps), by step status.", labels=["status"])
        for row in rows:
            family.add_metric([row["status"]], row["n"])
        yield family

    def _approvals(self) -> Iterator[Metric]:
        n = self._scoped(ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING)).count()
        yield GaugeMetricFamily("agentry_approvals_pending", "Approval requests waiting for a person.", value=n)

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("agentry_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"])
        up = 1
        try:
            depths = queue_depths()
            workers = live_worker_count()
        except Exception:
            logger.warning("metrics: Redis unavailable for queue depth", exc_info=True)
            depths, workers, up = {}, 0, 0
        for queue, n in depths.items():
            depth.add_metric([queue], n)
        yield depth
        yield GaugeMetricFamily("agentry_workers_live", "Workers whose heartbeat is fresh.", value=workers)
        yield GaugeMetricFamily("agentry_broker_up", "1 when the broker answered this scrape.", value=up)


def _buckets(row: dict[str, Any]) -> list[tuple[str, float]]:
    # COUNT(*) FILTER (duration <= bound) is already cumulative, as Prometheus wants.
    out = [(str(bound), float(row[f"le_{i}"])) for i, bound in enumerate(LATENCY_BUCKETS)]
    out.append(("+Inf", float(row["total"])))
    return out


def queue_depths() -> dict[str, int]:
    """LLEN of each Celery queue's Redis list (the kombu Redis transport keeps one per queue)."""
    client = Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        return {queue: int(client.llen(queue)) for queue in settings.CELERY_TASK_QUEUES}
    finally:
        client.close()


def live_worker_count() -> int:
    return len(live_workers())


def _metrics_scope(request: HttpRequest) -> tuple[list[Any] | None, HttpResponse | None]:
    """(organization ids or ALL_ORGANIZATIONS, None) for an allowed caller, else (None, error)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        raw = header[7:].strip()
        expected = getattr(settings, "METRICS_TOKEN", "") or ""
        # Constant time, so response timing does not reveal how much of the token matched.
        if expected and hmac.compare_digest(raw.encode(), expected.encode()):
            return ALL_ORGANIZATIONS, None
        try:
            found = BearerTokenAuthentication().authenticate(request)  # type: ignore[arg-type]
        except TokenFailed as exc:
            return None, error_response(exc.agentry_code, str(exc.detail))
        if found is None:
            return None, error_response("InvalidToken")
        token = found[1]
        if not token.has_scope(Scope.ADMIN):
            return None, error_response(
                "AgentAccessDenied", "The token lacks the 'admin' scope.", {"required_scope": Scope.ADMIN}
            )
        return [token.organization_id], None
    user = request.user
    if not user.is_authenticated:
        return None, error_response("NotAuthenticated")
    if user.is_active and user.is_superuser:
        return ALL_ORGANIZATIONS, None
    managed = managed_organization_ids(request) if user.is_active and user.is_staff else []
    if not managed:
        return None, error_response("InsufficientPermissions", "Metrics are for staff and organization admins.")
    return managed, None


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    scope, denied = _metrics_scope(request)
    if denied is not None:
        return denied
    # A registry per scrape: the collector's scope depends on the caller, and nothing is kept.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentryCollector(organization_ids=scope))  # type: ignore[arg-type]
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
