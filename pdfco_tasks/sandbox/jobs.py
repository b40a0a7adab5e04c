"""Merge jobs: a worker pool and the states a job goes through."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pdfco_tasks.sandbox.clock import Clock
from pdfco_tasks.sandbox.counters import Counters
from pdfco_tasks.sandbox.credits import CreditLedger
from pdfco_tasks.sandbox.errors import ApiError
from pdfco_tasks.sandbox.merge import Merger, MergeSpec, remove_tree
from pdfco_tasks.sandbox.storage import Storage, StoredObject, new_object_id

logger = logging.getLogger("pdfco_tasks.sandbox")

WORKING = "working"
SUCCESS = "success"
FAILED = "failed"
ABORTED = "aborted"
UNKNOWN = "unknown"


@dataclass
class Job:
    """One merge, sync or async.

    Attributes:
        job_id: Id in the PDF.co shape, also the first segment of the result URL.
        owner: API key that submitted the job.
        spec: What to merge.
        result: The stored object that receives the output.
        url: Signed result URL.
        price_per_page: Credits per output page (1 for merge, 2 for merge2).
        is_async: True for `async=true` submissions.
        ready_at: Sandbox-clock time before which job/check reports `working`.
        fault: `job-failed` or `job-aborted` when a fault was injected.
        state: `working`, `success`, `failed` or `aborted`.
        page_count: Pages of the full merge once it succeeded.
        error_code: Status code of the failure.
        message: Failure message naming the input.
        job_duration_ms: Run time of the merge.
        first_page_charge: Credits taken at submission (async only).
        settled: True once job/check charged the remaining pages.
        abandoned: True when a sync caller stopped waiting.
    """

    job_id: str
    owner: str
    spec: MergeSpec
    result: StoredObject
    url: str
    price_per_page: int
    is_async: bool
    ready_at: float
    fault: str | None = None
    state: str = WORKING
    page_count: int = 0
    error_code: int = 0
    message: str = ""
    job_duration_ms: int = 0
    first_page_charge: int = 0
    settled: bool = False
    abandoned: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class JobManager:
    """Runs merges on a thread pool and keeps every job by id.

    Args:
        storage: Where results go.
        merger: Does the work.
        ledger: Refunds failed and aborted async jobs.
        counters: Counts jobs by final state.
        clock: Sandbox clock for result expiry.
        workers: Threads, and so merges that can run at once.
    """

    def __init__(
        self,
        storage: Storage,
        merger: Merger,
        ledger: CreditLedger,
        counters: Counters,
        clock: Clock,
        workers: int,
    ) -> None:
        self.storage = storage
        self.merger = merger
        self.ledger = ledger
        self.counters = counters
        self.clock = clock
        self._executor = ThreadPoolExecutor(workers, "pdfco-sandbox-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)

    def new_job_id(self, expiration_minutes: int) -> str:
        """Return a job id: 32 letters and digits, `--`, a sequence number, `-`
        and the link lifetime in minutes."""
        return f"{new_object_id()}--{next(self._sequence)}-{expiration_minutes}"

    def start(self, job: Job) -> Future[None]:
        """Register `job` and queue it on the pool."""
        with self._lock:
            self._jobs[job.job_id] = job
        return self._executor.submit(self._run, job)

    def get(self, job_id: str, owner: str) -> Job | None:
        """Return the job of `owner` with this id, or None."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def visible_state(self, job: Job) -> str:
        """Return the state job/check reports, honouring the job latency."""
        if not job.done.is_set() or self.clock.now() < job.ready_at:
            return WORKING
        return job.state

    def settle_once(self, job: Job) -> bool:
        """Mark a successful async job as charged; return True only the first time.

        Sync jobs are charged in full by the merge request itself, so this
        returns False for them.
        """
        with self._lock:
            if job.settled or not job.is_async:
                return False
            job.settled = True
            return True

    def abandon(self, job: Job) -> None:
        """Drop the result of a sync job whose caller stopped waiting."""
        with self._lock:
            job.abandoned = True
            finished = job.done.is_set()
        if finished:
            self.storage.delete(job.result.object_id)

    def shutdown(self) -> None:
        """Stop the pool; queued jobs are cancelled, running ones finish."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _run(self, job: Job) -> None:
        started = time.monotonic()
        try:
            if job.fault == "job-aborted":
                self._finish(job, ABORTED, 0, "The job was aborted")
            elif job.fault == "job-failed":
                label = job.spec.sources[0].label
                message = f"Input {label} is damaged or of an incorrect type"
                self._finish(job, FAILED, 442, message)
            else:
                self._merge(job)
        finally:
            job.job_duration_ms = int((time.monotonic() - started) * 1000)
            self._settle(job)

    def _merge(self, job: Job) -> None:
        work_dir: Path | None = None
        output = self.storage.temp_path(job.result)
        try:
            work_dir = self.storage.make_work_dir()
            pages = self.merger.run(job.spec, work_dir, output)
            self.storage.commit(job.result, output, job.result.expires_at)
            job.page_count = pages
            job.state = SUCCESS
        except ApiError as exc:
            self._finish(job, FAILED, exc.status, exc.message)
        except Exception:
            logger.exception("job %s failed with an internal error", job.job_id)
            self._finish(
                job, FAILED, 500, "Internal error while merging; please try again"
            )
        finally:
            if work_dir is not None:
                remove_tree(work_dir)
            output.unlink(missing_ok=True)

    def _finish(self, job: Job, state: str, code: int, message: str) -> None:
        job.state = state
        job.error_code = code
        job.message = message

    def _settle(self, job: Job) -> None:
        if job.state != SUCCESS and job.first_page_charge:
            self.ledger.refund(job.owner, job.first_page_charge)
        self.counters.add_job(job.state)
        if job.state != SUCCESS:
            self.storage.delete(job.result.object_id)
        with self._lock:
            job.done.set()
            abandoned = job.abandoned
        if abandoned:
            self.storage.delete(job.result.object_id)
        detail = f" ({job.error_code}: {job.message})" if job.message else ""
        logger.info(
            "job %s finished: %s in %d ms%s",
            job.job_id,
            job.state,
            job.job_duration_ms,
            detail,
        )
