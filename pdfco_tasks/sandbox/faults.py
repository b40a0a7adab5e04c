"""Fault injection: seeded random failures that a client must survive."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable

# Faults drawn for an API request (any /v1 endpoint); 408 and 445 only for merges.
REQUEST_FAULTS = ("reset", "slow", "429", "500", "503", "error200")
MERGE_FAULTS = ("408", "445")
# Faults drawn once per accepted merge job.
JOB_FAULTS = ("job-failed", "job-aborted", "job-unknown", "drop-page")
# Faults drawn once per file download.
DOWNLOAD_FAULTS = ("reset", "slow", "truncate")

FAULT_KINDS = frozenset(REQUEST_FAULTS + MERGE_FAULTS + JOB_FAULTS + DOWNLOAD_FAULTS)


def parse_faults(spec: str) -> dict[str, float]:
    """Parse `KIND:RATE,KIND:RATE` into a mapping.

    Args:
        spec: Comma-separated pairs; an empty string means no faults.

    Returns:
        Rates by fault kind, in the order given.

    Raises:
        ValueError: On an unknown kind or a rate outside [0, 1].
    """
    faults: dict[str, float] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        kind, sep, rate_text = item.rpartition(":")
        kind = kind.strip().lower()
        if not sep or kind not in FAULT_KINDS:
            known = ", ".join(sorted(FAULT_KINDS))
            raise ValueError(
                f"unknown fault {item!r}; expected KIND:RATE with KIND one of {known}"
            )
        try:
            rate = float(rate_text)
        except ValueError:
            raise ValueError(
                f"fault rate must be a number in [0, 1], not {rate_text!r}"
            ) from None
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1], not {rate!r}")
        faults[kind] = rate
    return faults


class FaultInjector:
    """Draws faults from a seeded `random.Random`, so a run can be repeated.

    One random number is drawn per configured kind that applies to the event,
    in a fixed order, and the first kind whose draw falls below its rate wins.

    Args:
        spec: Fault specification, see `parse_faults`.
        seed: Seed of the random generator.
    """

    def __init__(self, spec: str = "", seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rates: dict[str, float] = {}
        self._random = random.Random(seed)
        self.configure(spec, seed)

    def configure(self, spec: str, seed: int | None = None) -> None:
        """Replace the fault rates and, when given, reseed the generator.

        Raises:
            ValueError: If `spec` is invalid.
        """
        rates = parse_faults(spec)
        with self._lock:
            self._rates = rates
            if seed is not None:
                self._random = random.Random(seed)

    @property
    def rates(self) -> dict[str, float]:
        """Configured rates by fault kind."""
        with self._lock:
            return dict(self._rates)

    def draw(self, kinds: Iterable[str]) -> str | None:
        """Return the fault to inject for one event, or None.

        Args:
            kinds: Fault kinds that apply to the event, in priority order.
        """
        with self._lock:
            for kind in kinds:
                rate = self._rates.get(kind)
                if rate and self._random.random() < rate:
                    return kind
        return None

    def draw_all(self, kinds: Iterable[str]) -> set[str]:
        """Return every kind whose draw hits, one draw per configured kind."""
        hits: set[str] = set()
        with self._lock:
            for kind in kinds:
                rate = self._rates.get(kind)
                if rate and self._random.random() < rate:
                    hits.add(kind)
        return hits
