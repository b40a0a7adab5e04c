"""The sandbox clock: wall time plus an offset that tests move forward."""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime, timezone


class Clock:
    """Wall-clock time shifted by an adjustable offset.

    Every expiry in the sandbox (presigned URLs, stored files, job latency) is
    measured on this clock, so advancing it lets a test reach an expiry without
    waiting. Rate limiting and the request log use `time.monotonic()` instead,
    because they measure real client behaviour.

    Args:
        offset: Seconds added to `time.time()` from the start.
    """

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = float(offset)
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        """Seconds currently added to the wall clock."""
        with self._lock:
            return self._offset

    def now(self) -> float:
        """Return the sandbox time in seconds since the epoch."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward and return the new offset.

        Args:
            seconds: How far to move, in seconds; must not be negative.

        Returns:
            The offset after the move.

        Raises:
            ValueError: If `seconds` is negative, NaN or infinite.
        """
        if not math.isfinite(seconds):
            raise ValueError(f"seconds must be a finite number, not {seconds!r}")
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, not {seconds!r}")
        with self._lock:
            self._offset += float(seconds)
            return self._offset


def isoformat(timestamp: float) -> str:
    """Format epoch seconds as ISO-8601 UTC with microseconds and an offset."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="microseconds")


def elapsed_ms(started: float) -> int:
    """Return whole milliseconds since `started`, a `time.monotonic()` reading."""
    return int((time.monotonic() - started) * 1000)
