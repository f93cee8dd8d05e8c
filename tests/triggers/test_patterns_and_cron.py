"""Event patterns (one segment, many segments, never-matching ones) and cron ticks on a
controlled clock (timezones, DST, late and early fires)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agents.triggers.cron import cron_next, cron_problem, cron_tick_at, timezone_problem
from agents.triggers.patterns import event_type_problem, pattern_matches, pattern_problem

UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("crm.contact.*", "crm.contact.created", True),
        ("crm.contact.*", "crm.contact.note.added", False),
        ("crm.contact.*", "crm.contacts.created", False),
        ("crm.**", "crm.contact.note.added", True),
        ("crm.**", "crm", False),
        ("**", "anything.at.all", True),
        ("*.login.*", "auth.login.failed", True),
        ("auth.login.*", "auth.logout.done", False),
        ("crm.contact.created", "crm.contact.created", True),
        ("crm.*.created", "crm.deal.created", True),
    ],
)
def test_pattern_matching(pattern, event_type, expected):
    assert pattern_matches(pattern, event_type) is expected


@pytest.mark.parametrize(
    "pattern",
    ["CRM.Contact.*", "crm.contact*", "crm..created", "crm.contact.", "crm contact", "ai.execution.*", "x" * 121, ""],
)
def test_patterns_that_can_never_match_are_refused(pattern):
    assert pattern_problem(pattern)


def test_platform_patterns_for_webhook_endpoints():
    assert pattern_problem("ai.execution.*", allow_platform=True) is None
    assert pattern_problem("ai.**", allow_platform=True) is None
    assert "none of the platform events" in pattern_problem("ai.billing.*", allow_platform=True)
    assert "none of the platform events" in pattern_problem("crm.deal.*", allow_platform=True)
    # The CRM tools' domain events are the platform's too: webhooks may subscribe to them.
    assert pattern_problem("crm.contact.*", allow_platform=True) is None


def test_event_types():
    assert event_type_problem("crm.contact.created") is None
    assert event_type_problem("Crm.Contact") and event_type_problem("crm.*") and event_type_problem("")


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("61 * * * *", "not a valid"),
        ("every monday", "not a valid"),
        ("0 0 * * * *", "not a valid"),
        ("0 0 L * *", "not supported by the scheduler"),
        ("0 0 * * 5#3", "not supported by the scheduler"),
        ("0 0 30 2 *", "never fires"),
        ("", "required"),
    ],
)
def test_bad_cron(expression, fragment):
    assert fragment in cron_problem(expression)


def test_good_cron_and_timezones():
    assert cron_problem("  */5   *  * * * ") is None
    assert cron_problem("0 9 * * mon-fri") is None
    assert timezone_problem("Europe/Paris") is None
    assert timezone_problem("Mars/Olympus_Mons")


def test_tick_of_a_fire_on_a_controlled_clock():
    # "At 09:00 in Paris": a fire 3 s late and one a minute and a half late name the same tick.
    tick = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)  # 09:00 CET
    for late in (timedelta(seconds=3), timedelta(seconds=59), timedelta(minutes=30)):
        assert cron_tick_at("0 9 * * *", "Europe/Paris", tick + late) == tick
    assert cron_tick_at("0 9 * * *", "Europe/Paris", tick - timedelta(seconds=1)) == tick - timedelta(days=1)
    # Every minute: each minute is its own tick, seconds do not matter.
    assert cron_tick_at("* * * * *", "UTC", datetime(2024, 1, 1, 12, 5, 59, 999, tzinfo=UTC)) == datetime(
        2024, 1, 1, 12, 5, tzinfo=UTC
    )


def test_next_time_across_a_dst_change():
    # Paris moves from CET to CEST on 2024-03-31: 09:00 local is 08:00 UTC, then 07:00 UTC.
    before = datetime(2024, 3, 30, 9, 0, tzinfo=UTC)
    assert cron_next("0 9 * * *", "Europe/Paris", before) == datetime(2024, 3, 31, 7, 0, tzinfo=UTC)
    assert cron_next("0 9 * * *", "UTC", before) == datetime(2024, 3, 31, 9, 0, tzinfo=UTC)
