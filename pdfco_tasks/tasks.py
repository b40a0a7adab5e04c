"""Prefect tasks for each step of a PDF.co merge.

Each task is a thin wrapper over a library function: it opens a client from the
credentials block, logs through the run logger and returns plain values. HTTP
retries live in the client, so the tasks themselves do not retry; polling and
download results are never cached.

Every task that calls PDF.co carries the tag `pdfco-api`, so a tag-based
concurrency limit (`prefect concurrency-limit create pdfco-api 4`) bounds them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from pdfco_tasks.client import PdfcoClient
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import ValidationError
from pdfco_tasks.inspection import MAX_TOTAL_BYTES, inspect_sources
from pdfco_tasks.jobstore import JobStore, key_fingerprint, merge_key, url_hash
from pdfco_tasks.limits import RATE_LIMIT_NAME, request_hook
from pdfco_tasks.models import InputSpec, JobStatus, MergeJob, UploadedFile
from pdfco_tasks.observability import EVENT_SUBMITTED, JobProgress, emit_merge_event
from pdfco_tasks.progress import ProgressEvent, publish
from pdfco_tasks.validation import ValidationReport, keep_rejected, validate_merged_pdf

__all__ = [
    "API_TAG",
    "RATE_LIMIT_NAME",
    "check_budget",
    "download_result",
    "forget_job",
    "inspect_inputs",
    "job_store_key",
    "submit_merge",
    "upload_document",
    "validate_result",
    "wait_for_job",
]

API_TAG = "pdfco-api"


@contextmanager
def open_client(credentials: PdfcoCredentials) -> Iterator[PdfcoClient]:
    """Open a client that shares the job store and the global rate limit."""
    settings = credentials.get_settings()
    client = PdfcoClient(
        settings,
        job_store=JobStore(settings.state_dir / "jobs.json"),
        before_request=request_hook(settings),
    )
    try:
        yield client
    finally:
        client.close()


def _base_name(source: str) -> str:
    return os.path.basename(source.split("?", 1)[0].rstrip("/")) or source


def _upload_run_name(parameters: dict[str, Any]) -> str:
    spec: InputSpec = parameters["spec"]
    return f"upload-{_base_name(spec.source)}"


def _job_run_name(prefix: str) -> Any:
    def name(parameters: dict[str, Any]) -> str:
        job: MergeJob = parameters["job"]
        return f"{prefix}-{job.job_id}"

    return name


@task(name="pdfco-inspect-inputs", cache_policy=NO_CACHE)
def inspect_inputs(
    sources: Sequence[str], max_total_bytes: int = MAX_TOTAL_BYTES
) -> list[InputSpec]:
    """Check every input before any credit is spent.

    Args:
        sources: Local paths and http(s) URLs, in merge order.
        max_total_bytes: Upper bound of the inputs' total size.

    Returns:
        One `InputSpec` per source, with its kind, hash and expected pages.

    Raises:
        PreflightError: Naming every bad input and why.

    Example:
        ```python
        from prefect import flow
        from pdfco_tasks.tasks import inspect_inputs

        @flow
        def check():
            specs = inspect_inputs(["report.pdf", "letter.docx"])
            return [spec.min_pages for spec in specs]
        ```
    """
    logger = get_run_logger()
    logger.info("Inspecting %d inputs", len(sources))
    publish(ProgressEvent("inspect", "", 0, len(sources)))
    specs = inspect_sources(sources, max_total_bytes=max_total_bytes)
    publish(ProgressEvent("inspect", "", len(specs), len(specs), finished=True))
    for spec in specs:
        for note in spec.notes:
            logger.warning("%s: %s", _base_name(spec.source), note)
    return specs


@task(name="pdfco-check-budget", cache_policy=NO_CACHE, tags=[API_TAG])
def check_budget(credentials: PdfcoCredentials) -> None:
    """Stop before uploading when the balance is below the block's minimum.

    Uploads cost credits too, so the flow checks the budget before them and
    the client checks it again before submitting.

    Args:
        credentials: PDF.co credentials with `min_remaining_credits` set.

    Raises:
        BudgetExceededError: With the balance and the minimum.

    Example:
        ```python
        from prefect import flow
        from pdfco_tasks import PdfcoCredentials
        from pdfco_tasks.tasks import check_budget

        @flow
        def guarded():
            check_budget(PdfcoCredentials.load("BLOCK_NAME"))
        ```
    """
    with open_client(credentials) as client:
        client.check_budget()
    get_run_logger().info("PDF.co balance is above the configured minimum")


@task(
    name="pdfco-upload",
    # Prefect's protocol for name callbacks has a classmethod that plain
    # functions lack, so mypy rejects what Prefect accepts at run time.
    task_run_name=_upload_run_name,  # type: ignore[arg-type]
    cache_policy=NO_CACHE,
    tags=[API_TAG],
)
def upload_document(spec: InputSpec, credentials: PdfcoCredentials) -> UploadedFile:
    """Upload one local file through a presigned URL; URLs pass through.

    Args:
        spec: The input, as returned by `inspect_inputs`.
        credentials: PDF.co credentials.

    Returns:
        The URL merge2 reads. A file uploaded earlier with the same content and
        still alive on PDF.co is reused instead of uploaded again.

    Example:
        ```python
        from prefect import flow, unmapped
        from pdfco_tasks import PdfcoCredentials
        from pdfco_tasks.tasks import inspect_inputs, upload_document

        @flow
        def upload_all(paths: list[str]):
            credentials = PdfcoCredentials.load("BLOCK_NAME")
            specs = inspect_inputs(paths)
            return upload_document.map(specs, unmapped(credentials)).result()
        ```
    """
    logger = get_run_logger()
    if spec.is_url:
        logger.info("Passing URL input %s through", _base_name(spec.source))
        return UploadedFile(source=spec.source, url=spec.source)

    name = _base_name(spec.source)
    publish(ProgressEvent("upload", name, 0, spec.size))
    with open_client(credentials) as client:
        upload = client.upload_file(
            Path(spec.source), content_type=spec.content_type, sha256=spec.sha256
        )
    reused = " (reused an earlier upload)" if upload.credits == 0 else ""
    logger.info("Uploaded %s (%d bytes)%s", name, spec.size, reused)
    publish(ProgressEvent("upload", name, spec.size, spec.size, finished=True))
    return upload


@task(
    name="pdfco-submit-merge",
    task_run_name="submit-{name}",
    cache_policy=NO_CACHE,
    tags=[API_TAG],
)
def submit_merge(
    uploads: Sequence[UploadedFile],
    specs: Sequence[InputSpec],
    credentials: PdfcoCredentials,
    name: str,
    bookmarks: bool = True,
) -> MergeJob:
    """Submit an async merge2 job, or resume a live job for the same inputs.

    PDF.co has no idempotency key, so the job id is stored under a key made
    from the inputs' content hashes and the options the moment PDF.co accepts
    it. A retried or re-run flow finds it there and resumes polling instead
    of paying for a second merge. Merges with URL inputs are always submitted
    afresh, because the content behind a URL can change.

    Args:
        uploads: The uploaded inputs, in merge order.
        specs: The inspected inputs, in the same order; their hashes form the key.
        credentials: PDF.co credentials.
        name: File name of the result on PDF.co.
        bookmarks: Ask PDF.co for one bookmark per input.

    Returns:
        The submitted or resumed job.

    Raises:
        BudgetExceededError: When the balance is below the block's minimum.

    Example:
        ```python
        from prefect import flow
        from pdfco_tasks import PdfcoCredentials
        from pdfco_tasks.tasks import inspect_inputs, submit_merge, upload_document

        @flow
        def start_merge(paths: list[str]):
            credentials = PdfcoCredentials.load("BLOCK_NAME")
            specs = inspect_inputs(paths)
            uploads = [upload_document(spec, credentials) for spec in specs]
            return submit_merge(uploads, specs, credentials, name="merged.pdf")
        ```
    """
    logger = get_run_logger()
    urls = [upload.url for upload in uploads]
    labels = [spec.source for spec in specs]
    with open_client(credentials) as client:
        if any(spec.is_url for spec in specs):
            # What a URL serves can change between runs, and its text is all the
            # job store could key on, so such merges are never resumed.
            logger.info("Not resuming earlier jobs: URL inputs may have changed")
            job = client.submit_merge(
                urls, name=name, bookmarks=bookmarks, labels=labels
            )
        else:
            job = client.submit_or_resume(
                urls,
                name=name,
                bookmarks=bookmarks,
                labels=labels,
                store_key=job_store_key(specs, credentials, name, bookmarks),
            )
    if job.resumed:
        logger.info("Resuming PDF.co job %s for %s", job.job_id, name)
    else:
        logger.info(
            "Submitted PDF.co job %s for %d inputs (%d credits)",
            job.job_id,
            len(uploads),
            job.credits,
        )
        emit_merge_event(EVENT_SUBMITTED, job.job_id, name, {"inputs": len(uploads)})
    return job


def job_store_key(
    specs: Sequence[InputSpec],
    credentials: PdfcoCredentials,
    name: str,
    bookmarks: bool,
) -> str:
    """Build the job store key of a merge: account, input contents and options."""
    settings = credentials.get_settings()
    options = {
        "name": name,
        "bookmarks": bookmarks,
        "expiration": settings.expiration_minutes,
        "endpoint": "merge2",
    }
    hashes = [spec.sha256 or url_hash(spec.source) for spec in specs]
    return merge_key(
        settings.base_url,
        hashes,
        options,
        account=key_fingerprint(settings.api_key),
    )


def forget_job(
    job: MergeJob,
    specs: Sequence[InputSpec],
    credentials: PdfcoCredentials,
    name: str,
    bookmarks: bool,
) -> None:
    """Drop a job from the job store, so the next run submits a new one."""
    settings = credentials.get_settings()
    store = JobStore(settings.state_dir / "jobs.json")
    store.forget_job(job_store_key(specs, credentials, name, bookmarks))


@task(
    name="pdfco-wait-for-job",
    task_run_name=_job_run_name("wait"),
    cache_policy=NO_CACHE,
    tags=[API_TAG],
)
def wait_for_job(
    job: MergeJob, credentials: PdfcoCredentials, show_progress: bool = True
) -> JobStatus:
    """Poll a job until it succeeds, fails or reaches the block's deadline.

    Intervals start short and grow to a cap, because every check costs 2
    credits. Results are never cached, so each call queries PDF.co again.

    Args:
        job: The job from `submit_merge`.
        credentials: PDF.co credentials.
        show_progress: Keep a progress artifact up to date while polling.

    Returns:
        The final `success` status, with the result URL and page count.

    Raises:
        JobFailedError: When the job ends failed, aborted or unknown.
        JobTimeoutError: When the job is still working at the deadline.

    Example:
        ```python
        from prefect import flow
        from pdfco_tasks import PdfcoCredentials
        from pdfco_tasks.tasks import wait_for_job

        @flow
        def wait(job):
            return wait_for_job(job, PdfcoCredentials.load("BLOCK_NAME"))
        ```
    """
    logger = get_run_logger()
    settings = credentials.get_settings()
    progress = JobProgress(job.job_id, settings.polling.deadline)

    def on_poll(status: JobStatus, elapsed: float) -> None:
        logger.info("Job %s is %s after %.1f s", job.job_id, status.status, elapsed)
        publish(
            ProgressEvent(
                "poll",
                job.job_id,
                elapsed,
                None,
                message=status.status,
                finished=status.terminal,
            )
        )
        if show_progress:
            progress.update(status.status, elapsed)

    with open_client(credentials) as client:
        status = client.wait_for_job(job, on_poll=on_poll)
    logger.info("Job %s succeeded with %s pages", job.job_id, status.page_count)
    return status


@task(
    name="pdfco-download",
    task_run_name=_job_run_name("download"),
    cache_policy=NO_CACHE,
    tags=[API_TAG],
)
def download_result(
    job: MergeJob, status: JobStatus, credentials: PdfcoCredentials, target: str
) -> str:
    """Stream the result to `target`, verified and renamed into place atomically.

    Args:
        job: The finished job.
        status: Its `success` status; its URL wins over the one from submission.
        credentials: PDF.co credentials (timeouts; the key is never sent).
        target: Where to write the PDF.

    Returns:
        The path written.

    Raises:
        ResultExpiredError: When the result link has expired.
        DownloadError: When the body is cut short or is not a whole PDF.

    Example:
        ```python
        from prefect import flow
        from pdfco_tasks import PdfcoCredentials
        from pdfco_tasks.tasks import download_result

        @flow
        def fetch(job, status):
            credentials = PdfcoCredentials.load("BLOCK_NAME")
            return download_result(job, status, credentials, "merged.pdf")
        ```
    """
    logger = get_run_logger()
    started = time.monotonic()
    publish(ProgressEvent("download", job.job_id))
    with open_client(credentials) as client:
        path = client.download(
            status.url or job.result_url,
            Path(target),
            job_id=job.job_id,
            expires_at=job.expires_at,
        )
    size = path.stat().st_size
    publish(ProgressEvent("download", job.job_id, size, size, finished=True))
    logger.info(
        "Downloaded job %s result (%d bytes) in %.1f s",
        job.job_id,
        size,
        time.monotonic() - started,
    )
    return str(path)


@task(name="pdfco-validate", cache_policy=NO_CACHE)
def validate_result(
    downloaded: str,
    specs: Sequence[InputSpec],
    output: str,
    reported_page_count: int | None = None,
) -> ValidationReport:
    """Check the merged PDF against its inputs, then move it to `output`.

    Args:
        downloaded: The verified download, beside `output`.
        specs: The inspected inputs, in merge order.
        output: The final path; written only when validation passes.
        reported_page_count: PDF.co's `pageCount`, which must agree.

    Returns:
        The page count and each input's page span.

    Raises:
        ValidationError: When the page count does not add up; the file is kept
            under a name that says it failed validation, never at `output`.

    Example:
        ```python
        from prefect import flow
        from pdfco_tasks.tasks import inspect_inputs, validate_result

        @flow
        def check(downloaded: str, paths: list[str]):
            specs = inspect_inputs(paths)
            return validate_result(downloaded, specs, "merged.pdf")
        ```
    """
    logger = get_run_logger()
    try:
        report = validate_merged_pdf(
            Path(downloaded), specs, reported_page_count=reported_page_count
        )
    except ValidationError as exc:
        if not Path(downloaded).exists():
            raise
        kept = keep_rejected(Path(downloaded), Path(output))
        logger.error("Validation failed; the file was kept at %s", kept)
        context = {**exc.context, "kept_path": str(kept)}
        # The message named the temporary download, which no longer exists.
        message = exc.message.replace(f"PDF {downloaded} ", f"PDF for {output} ", 1)
        raise ValidationError(
            f"{message}\nThe rejected file was kept at {kept}.", **context
        ) from exc

    os.replace(downloaded, output)
    publish(
        ProgressEvent(
            "validate", "", report.page_count, report.page_count, finished=True
        )
    )
    for note in report.notes:
        logger.warning("%s", note)
    logger.info("Validated %s: %d pages", output, report.page_count)
    return report
