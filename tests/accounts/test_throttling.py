"""The API throttle: a sliding-window counter per token in Redis (accounts/throttling.py)."""

from __future__ import annotations

import pytest

from accounts.throttling import TokenRateThrottle
from tests.conftest import assert_error


@pytest.fixture
def three_a_minute(monkeypatch):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/min"})


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    # The start of a minute (a window) far from any other test's keys.
    found = Clock(60 * 29_000_000.0)
    monkeypatch.setattr(TokenRateThrottle, "timer", staticmethod(found))
    return found


def test_a_token_over_its_rate_is_refused_with_the_wait_and_others_are_not(
    three_a_minute, clock, alice, mia, client_for
):
    api, other = client_for(alice), client_for(mia)
    assert [api.get("/api/v1/tokens/").status_code for _ in range(3)] == [200, 200, 200]
    clock.now += 10
    refused = api.get("/api/v1/tokens/")
    error = assert_error(refused, 429, "RateLimitExceeded")
    assert refused["Retry-After"] == "51"  # the rest of the window, rounded up
    assert error["details"]["retry_after_seconds"] == 51
    assert other.get("/api/v1/tokens/").status_code == 200  # per token


def test_the_last_window_still_counts_for_the_part_that_overlaps(three_a_minute, clock, alice, client_for):
    api = client_for(alice)
    clock.now += 50
    assert [api.get("/api/v1/tokens/").status_code for _ in range(3)] == [200, 200, 200]
    # 20 s into the next minute the sliding minute still holds 2/3 of those three: 2 + 1 fits,
    # a second request does not (a fixed window would let three more through at once).
    clock.now += 30
    assert api.get("/api/v1/tokens/").status_code == 200
    refused = api.get("/api/v1/tokens/")
    assert refused.status_code == 429
    # Room for one more once the last minute's weight falls under 1 of 3: at 40 s.
    assert int(refused["Retry-After"]) == 21
    clock.now += 21
    assert api.get("/api/v1/tokens/").status_code == 200
    # Two minutes later both windows have passed.
    clock.now += 120
    assert [api.get("/api/v1/tokens/").status_code for _ in range(3)] == [200, 200, 200]


def test_redis_unreachable_lets_requests_through_and_says_so(three_a_minute, alice, client_for, monkeypatch, caplog):
    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(TokenRateThrottle, "_count", down)
    api = client_for(alice)
    assert [api.get("/api/v1/tokens/").status_code for _ in range(5)] == [200] * 5
    assert "throttle store unavailable; request allowed" in caplog.text
