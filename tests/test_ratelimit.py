"""The process-wide request rate limiter."""

from __future__ import annotations

import threading
import time

import pytest

from pdfco_tasks.exceptions import ConfigurationError
from pdfco_tasks.ratelimit import (
    RequestRateLimiter,
    limiter_for_settings,
    shared_limiter,
)
from pdfco_tasks.settings import PdfcoSettings


class FakeClock:
    """A clock that moves only when the limiter sleeps or a test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def max_in_window(times: list[float], seconds: float) -> int:
    """Count the most timestamps in any closed window of `seconds`."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] > seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def start_times(
    limiter: RequestRateLimiter, clock: FakeClock, calls: int
) -> list[float]:
    times = []
    for _ in range(calls):
        limiter.acquire()
        times.append(clock.now)
    return times


@pytest.mark.parametrize(
    ("rate", "allowed"),
    [
        pytest.param(1.0, 1, id="one-per-second"),
        pytest.param(2.0, 2, id="free-plan"),
        pytest.param(5.0, 5, id="five"),
        pytest.param(10.0, 10, id="paid-plan"),
        pytest.param(2.5, 2, id="fraction-rounds-down"),
    ],
)
def test_limiter_window_never_exceeds_rate(rate: float, allowed: int) -> None:
    clock = FakeClock()
    limiter = RequestRateLimiter(rate, clock=clock, sleep=clock.sleep)

    times = start_times(limiter, clock, 40)

    assert max_in_window(times, 1.0) == allowed


def test_limiter_margin_widens_window() -> None:
    clock = FakeClock()
    limiter = RequestRateLimiter(5.0, margin=0.1, clock=clock, sleep=clock.sleep)

    times = start_times(limiter, clock, 12)

    assert limiter.interval == pytest.approx(0.22)
    assert times[5] - times[0] == pytest.approx(1.1)
    assert max_in_window(times, 1.09) == 5


def test_limiter_slow_rate_spaces_calls() -> None:
    clock = FakeClock()
    limiter = RequestRateLimiter(0.5, margin=0.0, clock=clock, sleep=clock.sleep)

    times = start_times(limiter, clock, 3)

    assert times == [1000.0, 1002.0, 1004.0]


def test_limiter_first_call_does_not_wait() -> None:
    clock = FakeClock()
    limiter = RequestRateLimiter(2.0, clock=clock, sleep=clock.sleep)

    waited = limiter.acquire()

    assert waited == 0
    assert clock.sleeps == []


def test_limiter_idle_time_is_not_banked() -> None:
    clock = FakeClock()
    limiter = RequestRateLimiter(2.0, margin=0.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 60.0

    times = start_times(limiter, clock, 3)

    assert times == [1060.0, 1060.5, 1061.0]


def test_limiter_set_rate_changes_interval() -> None:
    limiter = RequestRateLimiter(2.0, margin=0.0)

    limiter.set_rate(10.0)

    assert limiter.requests_per_second == 10.0
    assert limiter.interval == pytest.approx(0.1)


def test_limiter_as_hook_ignores_arguments() -> None:
    clock = FakeClock()
    limiter = RequestRateLimiter(1.0, margin=0.0, clock=clock, sleep=clock.sleep)

    limiter("GET", "https://example.invalid/", timeout=3)
    limiter()

    assert clock.sleeps == [1.0]


@pytest.mark.parametrize(
    "rate",
    [
        pytest.param(0.0, id="zero"),
        pytest.param(-1.0, id="negative"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="infinite"),
    ],
)
def test_limiter_invalid_rate_rejected(rate: float) -> None:
    with pytest.raises(ConfigurationError, match="requests_per_second must be"):
        RequestRateLimiter(rate)


def test_limiter_negative_margin_rejected() -> None:
    with pytest.raises(ConfigurationError, match="margin must be a non-negative"):
        RequestRateLimiter(1.0, margin=-0.5)


def test_limiter_threads_share_budget() -> None:
    limiter = RequestRateLimiter(10.0)
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(6):
            limiter.acquire()
            with lock:
                times.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(times) == 24
    assert max_in_window(times, 1.0) <= 10


class TestSharedLimiter:
    def test_same_account_shares_limiter(self) -> None:
        first = shared_limiter("http://127.0.0.1:1/v1", "key-a", 2.0)
        second = shared_limiter("http://127.0.0.1:1/v1/", "key-a", 2.0)

        assert first is second

    def test_other_key_gets_own_limiter(self) -> None:
        first = shared_limiter("http://127.0.0.1:2/v1", "key-a", 2.0)
        second = shared_limiter("http://127.0.0.1:2/v1", "key-b", 2.0)

        assert first is not second

    def test_new_rate_replaces_old(self) -> None:
        first = shared_limiter("http://127.0.0.1:3/v1", "key-a", 2.0)
        second = shared_limiter("http://127.0.0.1:3/v1", "key-a", 10.0)

        assert second is first
        assert first.requests_per_second == 10.0

    def test_repr_hides_key(self) -> None:
        limiter = shared_limiter("http://127.0.0.1:4/v1", "secret-key-value", 2.0)

        assert "secret-key-value" not in repr(limiter)

    def test_settings_without_rate_give_none(self) -> None:
        settings = PdfcoSettings(api_key="key-a", base_url="http://127.0.0.1:5/v1")

        assert limiter_for_settings(settings) is None

    def test_settings_with_rate_give_shared(self) -> None:
        settings = PdfcoSettings(
            api_key="key-a", base_url="http://127.0.0.1:6/v1", requests_per_second=4.0
        )

        limiter = limiter_for_settings(settings)

        assert limiter is shared_limiter("http://127.0.0.1:6/v1", "key-a", 4.0)

    def test_settings_reject_zero_rate(self) -> None:
        with pytest.raises(ConfigurationError, match="requests_per_second must be"):
            PdfcoSettings(api_key="key-a", requests_per_second=0.0)
