"""Resolving is one-shot under concurrency (DESIGN.md §13): 1,000 requests, each raced by an
approver and a denier at the same moment, on real PostgreSQL; exactly one decision each."""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter

import pytest
from django.conf import settings
from django.db import connections

from accounts.access import Actor
from accounts.models import Membership
from approvals.models import ApprovalRequest
from approvals.services import approval_resolve
from config.api.errors import ApiError
from executions.models import Execution
from tests.approvals.helpers import pending_approvals

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RACES = 1000
THREADS = 16


@pytest.fixture(autouse=True)
def _drop_queued_runs():
    yield
    # Approving queues each run for a worker; none runs here, so leave no messages behind.
    from redis import Redis

    Redis.from_url(settings.CELERY_BROKER_URL).delete("io", "default")


def run_in_threads(jobs: list, attempt, threads: int) -> Counter:
    """Jobs from one queue, in order (the two racers of a request are next to each other,
    so they are picked up together); each thread closes its own connection at the end."""
    work: queue.Queue = queue.Queue()
    for job in jobs:
        work.put(job)
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def worker() -> None:
        try:
            while True:
                try:
                    job = work.get_nowait()
                except queue.Empty:
                    return
                outcome = attempt(job)
                with lock:
                    outcomes[outcome] += 1
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return outcomes


def _race(approvals, resolvers) -> Counter:
    """Every request gets one approve and one deny that start together; returns outcomes."""
    barriers = {a.pk: threading.Barrier(2, timeout=30) for a in approvals}

    def attempt(job) -> str:
        approval, approved = job
        try:
            barriers[approval.pk].wait()
            approval_resolve(approval=approval, actor=resolvers[approved], approved=approved, note="race")
            return "approved" if approved else "denied"
        except ApiError as exc:
            return f"http_{exc.status_code}"

    return run_in_threads([(a, decision) for a in approvals for decision in (True, False)], attempt, THREADS)


def test_a_thousand_concurrent_approve_deny_races(org, alice, adam, make_agent, synced_tools):
    agents = [make_agent(name=f"Racer {i}", allowed_tools=["email_send"]) for i in range(4)]
    approvals = [a for i, agent in enumerate(agents) for a in pending_approvals(agent, org, RACES // len(agents))]
    resolvers = {
        True: Actor(organization=org, user=adam, membership=Membership.objects.get(user=adam)),
        False: Actor(organization=org, user=alice, membership=Membership.objects.get(user=alice)),
    }
    started = time.monotonic()
    outcomes = _race(approvals, resolvers)
    elapsed = time.monotonic() - started
    assert outcomes["approved"] + outcomes["denied"] == RACES, outcomes
    assert outcomes["http_409"] == RACES, outcomes
    assert set(outcomes) <= {"approved", "denied", "http_409"}, outcomes
    # The stored state agrees with the winners, request by request.
    rows = ApprovalRequest.objects.values_list("status", "execution__status", "resolved_by_id")
    pairs = Counter((status, run) for status, run, _ in rows)
    assert pairs == {("approved", "running"): outcomes["approved"], ("denied", "cancelled"): outcomes["denied"]}
    assert all(user in (adam.pk, alice.pk) for _, _, user in rows)
    assert Execution.objects.filter(status="waiting_approval").count() == 0
    # Cancelled runs were counted once each.
    assert (
        sum(a.cancelled_runs for a in type(agents[0]).objects.filter(pk__in=[a.pk for a in agents]))
        == outcomes["denied"]
    )
    assert elapsed < 120, f"{RACES} races took {elapsed:.1f}s"


def test_racing_over_the_api_gives_one_decision_and_409s(org, adam, alice, make_agent, synced_tools, client_for):
    agent = make_agent(name="Api racer", allowed_tools=["email_send"])
    approvals = pending_approvals(agent, org, 30)
    clients = {
        True: client_for(adam, scopes=["approvals:resolve"]),
        False: client_for(alice, scopes=["approvals:resolve"]),
    }
    barriers = {a.pk: threading.Barrier(2, timeout=30) for a in approvals}

    def attempt(job) -> int:
        approval, approved = job
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {clients[approved].raw_token}")
        barriers[approval.pk].wait()
        verb = "approve" if approved else "deny"
        return client.post(f"/api/v1/approvals/{approval.pk}/{verb}/", {}, format="json").status_code

    codes = run_in_threads([(a, d) for a in approvals for d in (True, False)], attempt, 8)
    assert codes == {200: 30, 409: 30}, codes
