"""Shared fixtures: named people in two organizations, and API clients acting as them.

- ``org``: alice (owner), adam (admin), mia (member), vic (viewer)
- ``other_org``: oscar (admin of another organization; must never see ``org``'s data)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest
from django.core.cache import cache
from django.db import connection
from django.test import TransactionTestCase
from rest_framework.test import APIClient

from accounts.models import Organization
from accounts.services import api_token_create
from agents.services.platform import agent_template_sync
from config.logging import log_context_var, request_id_var
from tests.browser import *  # noqa
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.fakes.fixtures import *  # noqa
from tests.fakes.schema_canary import *  # noqa
from tests.runtime_fixtures import *  # noqa

REPORT_LINES: list[str] = []


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault-injection run first (after pytest-django's own ordering): it is the longest
    file by minutes, so under pytest-xdist one worker starts on it while the others share the
    rest, instead of it starting last and running alone."""
    items.sort(key=lambda item: item.get_closest_marker("faults") is None)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the figures tests measured (``report_line``). They travel in the test's report,
    so under pytest-xdist they reach the controlling process, which prints the summary."""
    if report.when == "teardown":
        REPORT_LINES.extend(value for name, value in report.user_properties if name == "report_line")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Figures tests measured (faults injected, ...), printed whether they passed or not."""
    if REPORT_LINES:
        terminalreporter.section("measured by the suite")
        for line in REPORT_LINES:
            terminalreporter.write_line(line)


@pytest.fixture
def report_line(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """report_line("...") -> printed in the run's summary (see pytest_terminal_summary)."""
    return lambda line: request.node.user_properties.append(("report_line", line))


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle counters and rate limits live in Redis; start every test from zero.
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _fresh_log_context():
    # A request sets its ids for its log lines and leaves them (Django logs 4xx/5xx after the
    # middleware returns; the next request overwrites them). In tests the next "request" may be
    # another test in the same thread: start each from the defaults.
    request_id_var.set("")
    log_context_var.set({})
    yield


_flush_database = TransactionTestCase._fixture_teardown


def _deadlocked(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, psycopg.errors.DeadlockDetected):
            return True
        error = error.__cause__ or error.__context__
    return False


def _flush_retrying_a_deadlock(self) -> None:
    """A worker may still be writing a run's after-work (a usage row, an event) when a
    transactional test's TRUNCATE starts: PostgreSQL breaks the deadlock by failing one side,
    sometimes the TRUNCATE, and the next test would start on this one's rows. Try again.

    Then put back what the data migrations seed (the agent templates; content types and
    permissions come back with the flush's post_migrate): under pytest-xdist a worker runs a
    file of ordinary tests after another file's transactional ones, and those tests expect the
    database as migrations leave it, as every deployment has it."""
    for attempt in range(5):
        try:
            _flush_database(self)
            break
        except Exception as error:
            if attempt == 4 or not _deadlocked(error):
                raise
            time.sleep(0.2 * (attempt + 1))
    agent_template_sync()


TransactionTestCase._fixture_teardown = _flush_retrying_a_deadlock


@pytest.fixture(autouse=True)
def _quiet_before_flush(request):
    """A transactional test's database is emptied (TRUNCATE) after it. A server kept for the
    module may still be finishing a request of the test (a stream's last poll) in a
    transaction; its locks against the TRUNCATE's were a deadlock, and the next test started
    on the last one's rows. Set up after the database fixture, so this runs before its flush:
    wait (at most 10 s) until no other session is working in this database."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


@pytest.fixture
def org(db) -> Organization:
    return OrganizationFactory(name="Acme", slug="acme")


@pytest.fixture
def other_org(db) -> Organization:
    return OrganizationFactory(name="Globex", slug="globex")


def _member(org: Organization, name: str, role: str):
    user = UserFactory(username=f"{name}@{org.slug}.test")
    MembershipFactory(user=user, organization=org, role=role)
    return user


@pytest.fixture
def alice(org):
    return _member(org, "alice", "owner")


@pytest.fixture
def adam(org):
    return _member(org, "adam", "admin")


@pytest.fixture
def mia(org):
    return _member(org, "mia", "member")


@pytest.fixture
def vic(org):
    return _member(org, "vic", "viewer")


@pytest.fixture
def oscar(other_org):
    return _member(other_org, "oscar", "admin")


ClientFor = Callable[..., APIClient]


@pytest.fixture
def client_for(db) -> ClientFor:
    """client_for(user, organization=None, scopes=None) -> APIClient with a fresh bearer token."""

    def make(user, organization: Organization | None = None, scopes: list[str] | None = None) -> APIClient:
        if organization is None:
            organization = user.memberships.first().organization
        _, raw = api_token_create(user=user, organization=organization, scopes=scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        client.raw_token = raw  # type: ignore[attr-defined]
        return client

    return make


def assert_error(response, status: int, code: str) -> dict:
    """The response is an error in the shape of DESIGN.md §11 with this status and code."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details", "timestamp", "request_id"}, error
    assert error["code"] == code, error
    assert error["message"]
    assert error["request_id"]
    assert response["X-Request-ID"] == error["request_id"]
    return error
