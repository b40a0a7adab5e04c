"""Counters and a request log that tests read to check client behaviour."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from typing import Any

REQUEST_LOG_SIZE = 100_000


def max_in_window(times: list[float], seconds: float) -> int:
    """Return the largest number of sorted timestamps in any `seconds` window."""
    best = 0
    start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


class Counters:
    """Thread-safe counters of everything a sandbox run did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Set every counter back to zero and clear the request log."""
        with self._lock:
            self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._merges_by_key: Counter[str] = Counter()
            self._jobs: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._events: Counter[str] = Counter()
            self._credits: Counter[str] = Counter()
            self._log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)

    def record_request(self, endpoint: str, status: str, api: bool) -> None:
        """Count one request; API requests also go into the request log."""
        moment = time.monotonic()
        with self._lock:
            self._requests[endpoint][status] += 1
            if api:
                self._log.append({"t": moment, "endpoint": endpoint, "status": status})

    def add(self, event: str, amount: int = 1) -> None:
        """Count an event: `presigned_urls`, `puts` or `downloads`."""
        with self._lock:
            self._events[event] += amount

    def add_merge(self, key: str) -> None:
        """Count one accepted merge submission of `key`."""
        with self._lock:
            self._merges_by_key[key] += 1

    def add_job(self, state: str) -> None:
        """Count one job that reached its final `state`."""
        with self._lock:
            self._jobs[state] += 1

    def add_fault(self, kind: str) -> None:
        """Count one injected fault of `kind`."""
        with self._lock:
            self._faults[kind] += 1

    def add_credits(self, what: str, amount: int) -> None:
        """Add to the `charged` or `refunded` credit total."""
        with self._lock:
            self._credits[what] += amount

    def max_requests_in_window(self, seconds: float = 1.0) -> int:
        """Return the most API requests seen within any `seconds` window."""
        with self._lock:
            times = [entry["t"] for entry in self._log]
        return max_in_window(times, seconds)

    def snapshot(self) -> dict[str, Any]:
        """Return every counter as plain JSON-ready data."""
        with self._lock:
            log = list(self._log)
            data: dict[str, Any] = {
                "requests": {k: dict(v) for k, v in self._requests.items()},
                "merge_submissions": dict(self._merges_by_key),
                "merge_submissions_total": sum(self._merges_by_key.values()),
                "jobs": dict(self._jobs),
                "presigned_urls": self._events["presigned_urls"],
                "puts": self._events["puts"],
                "downloads": self._events["downloads"],
                "faults": dict(self._faults),
                "credits_charged": self._credits["charged"],
                "credits_refunded": self._credits["refunded"],
                "request_log": log,
            }
        times = [entry["t"] for entry in log]
        data["max_requests_in_window"] = {"1.0": max_in_window(times, 1.0)}
        return data
