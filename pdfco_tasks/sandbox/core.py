"""Settings of a sandbox and the components one running sandbox shares."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pdfco_tasks.sandbox.clock import Clock
from pdfco_tasks.sandbox.convert import OfficeConverter
from pdfco_tasks.sandbox.counters import Counters
from pdfco_tasks.sandbox.credits import CreditLedger
from pdfco_tasks.sandbox.faults import FaultInjector
from pdfco_tasks.sandbox.jobs import JobManager
from pdfco_tasks.sandbox.merge import Merger
from pdfco_tasks.sandbox.ratelimit import RateLimiter
from pdfco_tasks.sandbox.signing import UrlSigner
from pdfco_tasks.sandbox.sources import MAX_TOTAL_INPUT_BYTES, SourceFetcher
from pdfco_tasks.sandbox.storage import Storage

PURGE_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class SandboxConfig:
    """Every knob of a sandbox; `Sandbox` and the CLI take the same names.

    Attributes:
        api_keys: Accepted values of the `x-api-key` header.
        credits: Starting credit balance of every key.
        rate_limit: Requests per second per key, or None for no limit.
        rate_burst: Token-bucket size; defaults to the rate rounded up.
        job_latency: Seconds an async job reports `working` at least.
        clock_offset: Seconds the sandbox clock starts ahead of the wall clock.
        sync_budget: Seconds a sync merge may take before it returns 408.
        faults: Fault specification `KIND:RATE,...`.
        faults_seed: Seed of the fault generator.
        slow_seconds: Delay of the `slow` fault.
        errors_as_200: Send error bodies with HTTP status 200.
        workers: Merge jobs (and LibreOffice conversions) that run at once.
        soffice_timeout: Seconds before a LibreOffice conversion is killed.
        max_input_bytes: Bytes one upload, or all inputs of one request
            together, may take (2 GB, as on PDF.co).
    """

    api_keys: tuple[str, ...] = ("test-key",)
    credits: int = 1_000_000
    rate_limit: float | None = None
    rate_burst: int | None = None
    job_latency: float = 0.0
    clock_offset: float = 0.0
    sync_budget: float = 30.0
    faults: str = ""
    faults_seed: int = 0
    slow_seconds: float = 2.0
    errors_as_200: bool = False
    workers: int = 4
    soffice_timeout: float = 120.0
    max_input_bytes: int = MAX_TOTAL_INPUT_BYTES

    def __post_init__(self) -> None:
        if not self.api_keys or not all(self.api_keys):
            raise ValueError("api_keys must hold at least one non-empty key")
        if self.credits < 0:
            raise ValueError(f"credits must be >= 0, not {self.credits!r}")
        if self.max_input_bytes < 1:
            raise ValueError(
                f"max_input_bytes must be >= 1, not {self.max_input_bytes!r}"
            )
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, not {self.workers!r}")
        for name in ("job_latency", "sync_budget", "slow_seconds", "soffice_timeout"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"{name} must be finite and >= 0 seconds, not {value!r}"
                )
        if not math.isfinite(self.clock_offset):
            raise ValueError(
                f"clock_offset must be a finite number of seconds, "
                f"not {self.clock_offset!r}"
            )
        if self.rate_limit is not None and not math.isfinite(self.rate_limit):
            raise ValueError(
                f"rate_limit must be a finite number of requests/s, "
                f"not {self.rate_limit!r}"
            )


class SandboxCore:
    """The state behind one sandbox server.

    Args:
        config: The knobs.
        data_dir: Directory for stored files, scratch space and LibreOffice
            profiles.
    """

    def __init__(self, config: SandboxConfig, data_dir: Path) -> None:
        self.config = config
        self.data_dir = data_dir
        self.clock = Clock(config.clock_offset)
        self.counters = Counters()
        self.signer = UrlSigner()
        self.storage = Storage(data_dir)
        self.ledger = CreditLedger(config.api_keys, config.credits, self.counters)
        self.faults = FaultInjector(config.faults, config.faults_seed)
        self.limiter = RateLimiter(config.rate_limit, config.rate_burst)
        self.office = OfficeConverter(
            data_dir / "soffice-profiles", config.workers, config.soffice_timeout
        )
        self.fetcher = SourceFetcher(
            self.storage, self.signer, self.clock.now, config.max_input_bytes
        )
        self.jobs = JobManager(
            self.storage,
            Merger(self.fetcher, self.office),
            self.ledger,
            self.counters,
            self.clock,
            config.workers,
        )
        self.origin = ""
        self.port = 0
        self._last_purge = 0.0
        self._purge_lock = threading.Lock()

    def bind(self, host: str, port: int) -> None:
        """Record the address the server listens on; file URLs point there."""
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        shown = f"[{host}]" if ":" in host else host
        self.origin = f"http://{shown}:{port}"
        self.port = port

    def file_url(
        self,
        object_id: str,
        name: str,
        method: str,
        lifetime: int,
        issued_at: float,
        content_type: str | None = None,
    ) -> str:
        """Return a signed URL of a stored file.

        Args:
            object_id: First path segment.
            name: File name, the second path segment.
            method: `PUT` or `GET`.
            lifetime: Seconds the URL stays valid.
            issued_at: Sandbox-clock time of signing.
            content_type: Content-Type a PUT must send, or None.
        """
        path = f"/{object_id}/{name}"
        query = self.signer.query(method, path, issued_at, lifetime, content_type)
        return f"{self.origin}/{object_id}/{quote(name, safe='')}?{query}"

    def purge_if_due(self) -> None:
        """Delete expired files, at most once per second of real time."""
        moment = time.monotonic()
        with self._purge_lock:
            if moment - self._last_purge < PURGE_INTERVAL_SECONDS:
                return
            self._last_purge = moment
        self.storage.purge_expired(self.clock.now())

    def close(self) -> None:
        """Kill running conversions and stop the worker pool."""
        self.office.close()
        self.jobs.shutdown()
