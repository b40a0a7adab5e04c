"""A process-wide, thread-safe limit on the rate of HTTP calls to PDF.co.

PDF.co allows 2 requests per second on free plans and 10 on paid plans, and
rejects calls above that with HTTP 429. `RequestRateLimiter` spaces the start of
every call so that no 1-second window contains more calls than the configured
rate, whichever thread makes them. `shared_limiter` returns one limiter per API
root and key, so every client and task in a process draws from the same budget.

A limiter only sees calls made in its own process. Runs spread over several
processes or machines also need a server-side limit, such as Prefect's global
rate limit that the tasks layer takes before each call.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from pdfco_tasks.exceptions import ConfigurationError
from pdfco_tasks.jobstore import key_fingerprint
from pdfco_tasks.settings import PdfcoSettings

__all__ = [
    "DEFAULT_MARGIN",
    "RequestRateLimiter",
    "limiter_for_settings",
    "shared_limiter",
]

DEFAULT_MARGIN = 0.1
"""Seconds added to every window.

The limiter times a call when it lets it go, but the server times it when the
request arrives. The margin absorbs that delay, which varies from call to call
with connection setup and thread scheduling.
"""


class RequestRateLimiter:
    """Spaces calls so that no window of one second contains more than the rate.

    A rate of 5 lets one call start every 0.22 s (one second plus the margin,
    divided by 5). A fractional rate is rounded down within each second: 2.5
    behaves as 2 calls per second. A rate below 1 lets one call start every
    `1 / rate` seconds.

    Callers reserve their start time under a lock and sleep outside it, so
    waiting threads start in the order they asked.

    Args:
        requests_per_second: Maximum calls started in any one-second window.
        margin: Seconds added to each window; see `DEFAULT_MARGIN`.
        clock: Monotonic clock in seconds, replaceable in tests.
        sleep: Sleep function matching `clock`, replaceable in tests.

    Raises:
        ConfigurationError: When the rate is not a positive finite number or the
            margin is negative.

    Example:
        ```python
        limiter = RequestRateLimiter(2.0)
        for url in urls:
            limiter.acquire()
            session.get(url)
        ```
    """

    def __init__(
        self,
        requests_per_second: float,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if margin < 0 or not math.isfinite(margin):
            raise ConfigurationError(
                f"margin must be a non-negative number of seconds, not {margin!r}."
            )
        self._margin = margin
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start: float | None = None
        self._interval = 0.0
        self._rate = 0.0
        self.set_rate(requests_per_second)

    @property
    def requests_per_second(self) -> float:
        """The configured rate, in calls per second."""
        return self._rate

    @property
    def interval(self) -> float:
        """Seconds between the starts of two consecutive calls."""
        return self._interval

    def set_rate(self, requests_per_second: float) -> None:
        """Change the rate. Calls already reserved keep their start times.

        Raises:
            ConfigurationError: When the rate is not a positive finite number.
        """
        rate = _check_rate(requests_per_second)
        calls_per_window = max(1, math.floor(rate))
        window = max(1.0, calls_per_window / rate)
        with self._lock:
            self._rate = rate
            self._interval = (window + self._margin) / calls_per_window

    def acquire(self) -> float:
        """Block until the next call may start.

        Returns:
            Seconds spent waiting.
        """
        with self._lock:
            now = self._clock()
            start = now if self._next_start is None else max(now, self._next_start)
            self._next_start = start + self._interval

        delay = start - now
        if delay > 0:
            self._sleep(delay)
        return delay

    def __call__(self, *args: object, **kwargs: object) -> None:
        """Wait for a slot, so the limiter serves as a `before_request` hook.

        Any arguments the hook receives are ignored.
        """
        self.acquire()

    def __repr__(self) -> str:
        return (
            f"RequestRateLimiter(requests_per_second={self._rate!r}, "
            f"margin={self._margin!r})"
        )


def _check_rate(requests_per_second: float) -> float:
    rate = float(requests_per_second)
    if not math.isfinite(rate) or rate <= 0:
        raise ConfigurationError(
            "requests_per_second must be a positive number, "
            f"not {requests_per_second!r}."
        )
    return rate


_registry: dict[tuple[str, str], RequestRateLimiter] = {}
_registry_lock = threading.Lock()


def shared_limiter(
    base_url: str, api_key: str, requests_per_second: float
) -> RequestRateLimiter:
    """Return the process-wide limiter of one API root and key.

    All callers with the same base URL and key get the same limiter, whichever
    thread or client requests it. When a caller gives a different rate, the limiter
    switches to it, so the most recent setting wins.

    Args:
        base_url: The API root, such as `https://api.pdf.co/v1`.
        api_key: The API key; only its fingerprint is kept.
        requests_per_second: Maximum calls started in any one-second window.

    Returns:
        The shared limiter.

    Raises:
        ConfigurationError: When the rate is not a positive finite number.
    """
    rate = _check_rate(requests_per_second)
    key = (base_url.rstrip("/"), key_fingerprint(api_key))
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = RequestRateLimiter(rate)
            _registry[key] = limiter
    if limiter.requests_per_second != rate:
        limiter.set_rate(rate)
    return limiter


def limiter_for_settings(settings: PdfcoSettings) -> RequestRateLimiter | None:
    """Return the shared limiter for `settings`, or None when no rate is set."""
    rate = settings.requests_per_second
    if rate is None:
        return None
    return shared_limiter(settings.base_url, settings.api_key, rate)
