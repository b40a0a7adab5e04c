"""The `merge_documents` flow: an ordered list of documents into one validated PDF."""

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from pdfco_tasks.chunking import DEFAULT_CHUNK_SIZE, join_pdfs, plan_chunks
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import PdfcoError, PreflightError, ResultExpiredError
from pdfco_tasks.jobstore import JobStore
from pdfco_tasks.models import InputSpec, JobStatus, MergeJob, MergeResult, PageSpan
from pdfco_tasks.observability import (
    EVENT_COMPLETED,
    EVENT_FAILED,
    emit_merge_event,
    publish_merge_artifacts,
)
from pdfco_tasks.outputs import (
    check_output,
    chunk_path,
    lock_output,
    remove_leftovers,
    staging_path,
)
from pdfco_tasks.tasks import (
    check_budget,
    download_result,
    forget_job,
    inspect_inputs,
    submit_merge,
    upload_document,
    validate_result,
    wait_for_job,
)

__all__ = ["merge_documents", "resolve_credentials"]


def resolve_credentials(
    credentials: PdfcoCredentials | str | None,
) -> PdfcoCredentials:
    """Load a block by name, or build one from the environment when None."""
    if isinstance(credentials, PdfcoCredentials):
        return credentials
    if credentials:
        loaded = PdfcoCredentials.load(credentials, _sync=True)  # type: ignore[call-arg]
        assert isinstance(loaded, PdfcoCredentials)
        return loaded
    return PdfcoCredentials()


def _flow_run_name() -> str:
    parameters = flow_run.parameters
    output = Path(str(parameters.get("output", "merged.pdf"))).name
    count = len(parameters.get("sources") or [])
    return f"merge-{count}-into-{output}"


@flow(name="merge-documents", flow_run_name=_flow_run_name, log_prints=False)
def merge_documents(
    sources: list[str],
    output: str,
    credentials: PdfcoCredentials | str | None = None,
    overwrite: bool = False,
    bookmarks: bool = True,
    create_artifacts: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, Any]:
    """Merge documents into one PDF through PDF.co and prove it is whole.

    Inputs are checked before any credit is spent, local files are uploaded
    concurrently, one async merge2 job runs, and the result is streamed to
    disk, verified and validated against the pages the inputs add up to. The
    file appears at `output` only when all of that passed.

    Args:
        sources: Local paths and http(s) URLs, in merge order: PDF, DOC, DOCX,
            XLS, XLSX, RTF, TXT, PNG, JPEG, GIF, BMP, TIFF or ZIP.
        output: Path of the merged PDF.
        credentials: A `PdfcoCredentials` block, the name of a saved one, or
            None to read PDFCO_API_KEY and PDFCO_BASE_URL.
        overwrite: Replace an existing `output`.
        bookmarks: Add one bookmark per input to the result.
        create_artifacts: Publish a summary and a page-span table to the UI.
        chunk_size: Maximum number of inputs per PDF.co merge. Larger merges,
            and merges of more than 2 GB, run as parallel chunk merges whose
            verified results are joined locally at no extra credit cost.

    Returns:
        `MergeResult.to_dict()`: output path, page count, each input's page
        span, job id, credits used and remaining, and durations in seconds.

    Raises:
        PreflightError: Bad inputs or an existing output; nothing was spent.
        ValidationError: The merged page count does not add up.

    Example:
        ```python
        from flows.merge_documents import merge_documents

        result = merge_documents(
            ["report.pdf", "letter.docx", "chart.png"],
            output="out/merged.pdf",
            credentials="BLOCK_NAME",
        )
        print(result["page_count"], result["spans"])
        ```
    """
    started = time.monotonic()
    target = Path(output).expanduser().resolve()
    block = resolve_credentials(credentials)
    if chunk_size < 1:
        raise PreflightError(
            f"chunk_size must be at least 1, not {chunk_size!r}.",
            problems=[("chunk_size", "below 1")],
        )

    state_dir = block.get_settings().state_dir
    with lock_output(target, state_dir):
        check_output(target, overwrite)
        JobStore(state_dir / "jobs.json").check()
        for path in remove_leftovers(target):
            get_run_logger().info("Removed %s, left by an interrupted merge", path)
        return _merge_locked(
            sources, target, block, bookmarks, create_artifacts, chunk_size, started
        )


def _merge_locked(
    sources: list[str],
    target: Path,
    block: PdfcoCredentials,
    bookmarks: bool,
    create_artifacts: bool,
    chunk_size: int,
    started: float,
) -> dict[str, Any]:
    """Run the merge steps while this run holds the lock on `target`."""
    logger = get_run_logger()
    job: MergeJob | None = None
    try:
        # Chunking handles totals over PDF.co's 2 GB limit; single files over
        # it are still rejected by inspection.
        specs = inspect_inputs(sources, max_total_bytes=sys.maxsize)
        if block.min_remaining_credits is not None:
            check_budget(block)
        chunks = plan_chunks(specs, max_inputs=chunk_size)
        if len(chunks) > 1:
            result = _merge_in_chunks(chunks, block, target, bookmarks, started)
        else:
            outcome = _run_merge(specs, block, target, bookmarks)
            job = outcome.job
            result = _finish(outcome, specs, block, target, bookmarks, started)
    except PdfcoError as exc:
        staging_path(target).unlink(missing_ok=True)
        job_id = job.job_id if job else getattr(exc, "job_id", None)
        emit_merge_event(
            EVENT_FAILED,
            job_id,
            target.name,
            {"error": type(exc).__name__, "message": exc.message[:500]},
        )
        raise

    if create_artifacts:
        publish_merge_artifacts(result, specs, target.name)
    emit_merge_event(
        EVENT_COMPLETED,
        result.job_id,
        target.name,
        {
            "pages": result.page_count,
            "credits_used": result.credits_used,
            "remaining_credits": result.remaining_credits,
        },
    )
    logger.info(
        "Merged %d inputs into %s: %d pages, %d credits",
        len(specs),
        target,
        result.page_count,
        result.credits_used,
    )
    return result.to_dict()


class _Outcome:
    """Results, timings and costs of the remote steps of one merge."""

    def __init__(self) -> None:
        self.job: MergeJob | None = None
        self.status: JobStatus | None = None
        self.downloaded = ""
        self.credits = 0
        self.durations: dict[str, float] = {}


def _run_merge(
    specs: Sequence[InputSpec],
    block: PdfcoCredentials,
    target: Path,
    bookmarks: bool,
) -> _Outcome:
    """Upload, submit, wait and download; resubmit once if the result expired."""
    outcome = _Outcome()
    for attempt in (1, 2):
        try:
            _remote_steps(outcome, specs, block, target, bookmarks)
            return outcome
        except ResultExpiredError:
            if attempt == 2 or outcome.job is None:
                raise
            get_run_logger().warning(
                "The result of job %s expired before download; submitting again",
                outcome.job.job_id,
            )
            forget_job(outcome.job, specs, block, target.name, bookmarks)
    raise AssertionError("unreachable")


def _remote_steps(
    outcome: _Outcome,
    specs: Sequence[InputSpec],
    block: PdfcoCredentials,
    target: Path,
    bookmarks: bool,
) -> None:
    clock = time.monotonic()
    uploads = upload_document.map(specs, unmapped(block)).result()
    outcome.credits += sum(upload.credits for upload in uploads)
    outcome.durations["upload"] = time.monotonic() - clock

    clock = time.monotonic()
    outcome.job = submit_merge(
        uploads, specs, block, name=target.name, bookmarks=bookmarks
    )
    outcome.status = wait_for_job(outcome.job, block)
    outcome.credits += outcome.job.credits + outcome.status.polling_credits
    outcome.durations["merge"] = time.monotonic() - clock

    clock = time.monotonic()
    outcome.downloaded = download_result(
        outcome.job, outcome.status, block, str(staging_path(target))
    )
    outcome.durations["download"] = time.monotonic() - clock


def _finish(
    outcome: _Outcome,
    specs: Sequence[InputSpec],
    block: PdfcoCredentials,
    target: Path,
    bookmarks: bool,
    started: float,
) -> MergeResult:
    assert outcome.job is not None and outcome.status is not None
    clock = time.monotonic()
    try:
        report = validate_result(
            outcome.downloaded, specs, str(target), outcome.status.page_count
        )
    except PdfcoError:
        # The job's output is wrong: a re-run must submit again, not resume it.
        forget_job(outcome.job, specs, block, target.name, bookmarks)
        raise
    outcome.durations["validate"] = time.monotonic() - clock
    outcome.durations["total"] = time.monotonic() - started

    remaining = outcome.status.remaining_credits
    if remaining is None:
        remaining = outcome.job.remaining_credits
    return MergeResult(
        output=str(target),
        page_count=report.page_count,
        spans=report.spans,
        job_id=outcome.job.job_id,
        credits_used=outcome.credits,
        remaining_credits=remaining,
        durations={k: round(v, 3) for k, v in outcome.durations.items()},
        resumed=outcome.job.resumed,
        notes=report.notes,
    )


@task(
    name="pdfco-merge-chunk",
    task_run_name="merge-chunk-{index}",
    cache_policy=NO_CACHE,
)
def merge_chunk(
    specs: list[InputSpec],
    credentials: PdfcoCredentials,
    part: str,
    index: int,
    bookmarks: bool,
) -> MergeResult:
    """Merge one chunk on PDF.co and validate its result at `part`."""
    started = time.monotonic()
    outcome = _run_merge(specs, credentials, Path(part), bookmarks)
    return _finish(outcome, specs, credentials, Path(part), bookmarks, started)


def _merge_in_chunks(
    chunks: Sequence[list[InputSpec]],
    block: PdfcoCredentials,
    target: Path,
    bookmarks: bool,
    started: float,
) -> MergeResult:
    """Merge chunks in parallel, then join their validated results in order."""
    specs = [spec for chunk in chunks for spec in chunk]
    parts = [chunk_path(target, index) for index in range(len(chunks))]
    get_run_logger().info(
        "Merging %d inputs in %d chunks of at most %d",
        len(specs),
        len(chunks),
        max(len(chunk) for chunk in chunks),
    )
    try:
        futures = merge_chunk.map(
            chunks,
            unmapped(block),
            [str(part) for part in parts],
            list(range(1, len(chunks) + 1)),
            unmapped(bookmarks),
        )
        # result() raises at the first failed chunk while others still run;
        # waiting first keeps a late chunk from writing its part after the
        # cleanup below.
        futures.wait()
        results = futures.result()
        staging = staging_path(target)
        join_pdfs(parts, staging)
        report = validate_result(
            str(staging), specs, str(target), sum(r.page_count for r in results)
        )
    finally:
        for part in parts:
            part.unlink(missing_ok=True)

    spans = _chunk_spans(results, report.spans)
    return MergeResult(
        output=str(target),
        page_count=report.page_count,
        spans=spans,
        job_id=",".join(result.job_id for result in results),
        credits_used=sum(result.credits_used for result in results),
        remaining_credits=min(
            (r.remaining_credits for r in results if r.remaining_credits is not None),
            default=None,
        ),
        durations={"total": round(time.monotonic() - started, 3)},
        resumed=all(result.resumed for result in results),
        notes=report.notes,
    )


def _chunk_spans(
    results: Sequence[MergeResult], joined: Sequence[PageSpan]
) -> tuple[PageSpan, ...]:
    """Shift each chunk's own spans by the pages of the chunks before it.

    Each chunk's spans were validated against its own result, so they are at
    least as exact as spans read back from the joined file.
    """
    spans: list[PageSpan] = []
    offset = 0
    for result in results:
        for span in result.spans:
            spans.append(
                PageSpan(span.source, span.first_page + offset, span.last_page + offset)
            )
        offset += result.page_count
    return tuple(spans) if len(spans) == len(joined) else tuple(joined)


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(merge_documents(sys.argv[2:], sys.argv[1]), indent=2))
