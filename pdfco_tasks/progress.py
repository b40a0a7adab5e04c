"""In-process progress notifications from the merge steps to a display.

Tasks publish `ProgressEvent`s; the command line and the notebook entry point
subscribe and draw progress bars. Listeners run in the publishing thread and
must be quick; an exception in a listener is logged and ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

__all__ = ["ProgressEvent", "Stage", "publish", "subscribe"]

Stage = Literal["inspect", "upload", "submit", "poll", "download", "validate"]

_logger = logging.getLogger("pdfco_tasks")
_lock = threading.Lock()
_listeners: list[Callable[[ProgressEvent], None]] = []


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a merge that made progress.

    Attributes:
        stage: The step.
        subject: The input file name or job id the event is about.
        done: Units finished so far (files, bytes or seconds, by stage).
        total: Units expected, when known.
        message: A short human-readable status.
        finished: Whether this event ends the step for `subject`.
    """

    stage: Stage
    subject: str
    done: float = 0.0
    total: float | None = None
    message: str = ""
    finished: bool = False


def publish(event: ProgressEvent) -> None:
    """Send an event to every current listener."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # a display must never break a merge
            _logger.warning("A progress listener failed", exc_info=True)


@contextmanager
def subscribe(listener: Callable[[ProgressEvent], None]) -> Iterator[None]:
    """Call `listener` with every event published inside the `with` block."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
