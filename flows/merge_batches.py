"""The `merge_batches` flow: many document sets, each merged on its own, concurrently.

Three limits bound the work, from the outside in:

- the global concurrency limit `pdfco-merge` on the Prefect server, when it
  exists, caps merges across all runs (`prefect gcl create pdfco-merge
  --limit 4`);
- `max_concurrency` caps the merges of this run;
- `requests_per_second` caps the HTTP calls of every task in the process, and
  the server's `pdfco-api` rate limit, when it exists, caps them across
  processes.
"""

from collections import deque
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.exceptions import PrefectHTTPStatusError
from prefect.futures import PrefectFuture, as_completed
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field

from flows.merge_documents import merge_documents, resolve_credentials
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import BatchFailedError, PdfcoError, PreflightError
from pdfco_tasks.limits import merge_slot
from pdfco_tasks.observability import publish_table

__all__ = ["BatchSpec", "merge_batch", "merge_batches"]

DEFAULT_ARTIFACT_KEY = "pdfco-merge-batches"


class BatchSpec(BaseModel):
    """One document set of `merge_batches`: its inputs and where the result goes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: list[str] = Field(
        min_length=1,
        description="Local paths and http(s) URLs, in merge order.",
    )
    output: str = Field(description="Path of the merged PDF.")
    bookmarks: bool = Field(
        default=True, description="Add one bookmark per input to the result."
    )


def _flow_run_name() -> str:
    count = len(flow_run.parameters.get("batches") or [])
    return f"merge-{count}-batches"


def _prefect_server_busy(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry a batch only when the Prefect API itself responded with a 5xx.

    A SQLite-backed Prefect server responds 503 under many concurrent runs. The
    retried merge resumes its PDF.co job from the job store, so no merge is
    paid twice. Failures of the merge itself are final.
    """
    try:
        state.result()
    except PrefectHTTPStatusError as exc:
        return exc.response.status_code >= 500
    except Exception:  # any other failure belongs to the merge: do not retry
        return False
    return False


@task(
    name="pdfco-merge-batch",
    task_run_name="batch-{label}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[2, 5],
    retry_condition_fn=_prefect_server_busy,
)
def merge_batch(
    batch: BatchSpec,
    credentials: PdfcoCredentials,
    label: str,
    overwrite: bool = False,
    create_artifacts: bool = True,
) -> dict[str, Any]:
    """Merge one document set, holding a slot of the `pdfco-merge` limit.

    Args:
        batch: The inputs and output of this merge.
        credentials: PDF.co credentials; wrap them in `unmapped` with `.map()`.
        label: A short name for the task run, such as `03-report`.
        overwrite: Replace an existing output.
        create_artifacts: Publish the merge's summary and page-span table.

    Returns:
        What `merge_documents` returns.

    Example:
        ```python
        from prefect import flow, unmapped
        from flows.merge_batches import BatchSpec, merge_batch
        from pdfco_tasks import PdfcoCredentials

        @flow
        def two_merges():
            credentials = PdfcoCredentials.load("BLOCK_NAME")
            batches = [
                BatchSpec(sources=["a.pdf", "b.pdf"], output="ab.pdf"),
                BatchSpec(sources=["c.pdf", "d.pdf"], output="cd.pdf"),
            ]
            labels = ["ab", "cd"]
            return merge_batch.map(batches, unmapped(credentials), labels).result()
        ```
    """
    with merge_slot():
        return merge_documents(
            list(batch.sources),
            batch.output,
            credentials=credentials,
            overwrite=overwrite,
            bookmarks=batch.bookmarks,
            create_artifacts=create_artifacts,
        )


@flow(name="merge-batches", flow_run_name=_flow_run_name, log_prints=False)
def merge_batches(
    batches: list[BatchSpec],
    credentials: PdfcoCredentials | str | None = None,
    max_concurrency: int = 4,
    requests_per_second: float | None = 2.0,
    overwrite: bool = False,
    create_artifacts: bool = True,
    artifact_key: str = DEFAULT_ARTIFACT_KEY,
) -> dict[str, Any]:
    """Merge many document sets in one run, each into its own validated PDF.

    Every set is a `merge_documents` subflow inside a `pdfco-merge-batch`
    task. One failed set does not stop the others: all of them run, a table
    artifact lists every outcome, and the run then fails with an error that
    names each failed set.

    Args:
        batches: The document sets; plain dicts with `sources` and `output`
            (and optionally `bookmarks`) are accepted.
        credentials: A `PdfcoCredentials` block, the name of a saved one, or
            None to read PDFCO_API_KEY and PDFCO_BASE_URL.
        max_concurrency: Merges that run at the same time in this run.
        requests_per_second: HTTP calls per second to PDF.co from this
            process, replacing the block's setting: 2 suits free plans and 10
            paid ones. None keeps the block's setting.
        overwrite: Replace outputs that already exist.
        create_artifacts: Publish the batch table and each merge's artifacts.
        artifact_key: Key of the table artifact that lists every batch.

    Returns:
        `batches` (one dict per set, in input order: `index`, `output`,
        `status`, `page_count`, `job_id`, `credits_used` and `error`),
        `completed`, `failed`, `pages` and `credits_used` totals.

    Raises:
        PreflightError: Invalid settings, or two sets with the same output.
        BatchFailedError: At least one set failed; its `outcomes` attribute
            contains the per-set dicts.

    Example:
        ```python
        from flows.merge_batches import merge_batches

        summary = merge_batches(
            [
                {"sources": ["jan/a.pdf", "jan/b.pdf"], "output": "out/jan.pdf"},
                {"sources": ["feb/a.pdf", "feb/b.docx"], "output": "out/feb.pdf"},
            ],
            credentials="BLOCK_NAME",
            requests_per_second=2.0,
        )
        print(summary["completed"], summary["pages"])
        ```
    """
    logger = get_run_logger()
    specs = [BatchSpec.model_validate(batch) for batch in batches]
    _check_settings(specs, max_concurrency)
    block = _with_rate(resolve_credentials(credentials), requests_per_second)
    if not specs:
        logger.warning("No batches given, so nothing is merged")

    outcomes = _run_all(specs, block, max_concurrency, overwrite, create_artifacts)
    if create_artifacts and outcomes:
        publish_table(
            outcomes,
            key=artifact_key,
            description=f"Outcome of each of {len(outcomes)} merges",
        )
    summary = _summarize(outcomes)
    logger.info(
        "%d of %d merges completed, %d failed, %d pages, %d credits",
        summary["completed"],
        len(outcomes),
        summary["failed"],
        summary["pages"],
        summary["credits_used"],
    )
    if summary["failed"]:
        raise BatchFailedError(_failure_message(outcomes), outcomes=outcomes)
    return summary


def _check_settings(specs: list[BatchSpec], max_concurrency: int) -> None:
    if max_concurrency < 1:
        raise PreflightError(
            f"max_concurrency must be at least 1, not {max_concurrency!r}.",
            problems=[("max_concurrency", "below 1")],
        )

    seen: dict[Path, int] = {}
    for index, spec in enumerate(specs):
        target = Path(spec.output).expanduser().resolve()
        if target in seen:
            raise PreflightError(
                f"Batches {seen[target]} and {index} both write {target}; "
                "give every batch its own output.",
                problems=[(str(target), "output used twice")],
            )
        seen[target] = index


def _with_rate(
    block: PdfcoCredentials, requests_per_second: float | None
) -> PdfcoCredentials:
    if requests_per_second is None:
        return block
    if not requests_per_second > 0:
        raise PreflightError(
            "requests_per_second must be a positive number or None, "
            f"not {requests_per_second!r}.",
            problems=[("requests_per_second", "not positive")],
        )
    return block.model_copy(update={"requests_per_second": requests_per_second})


def _label(index: int, spec: BatchSpec) -> str:
    return f"{index:02d}-{Path(spec.output).stem}"


def _run_all(
    specs: list[BatchSpec],
    block: PdfcoCredentials,
    max_concurrency: int,
    overwrite: bool,
    create_artifacts: bool,
) -> list[dict[str, Any]]:
    """Run every batch with at most `max_concurrency` in flight."""
    pending = deque(enumerate(specs))
    running: list[tuple[int, PrefectFuture[dict[str, Any]]]] = []
    outcomes: dict[int, dict[str, Any]] = {}

    while pending or running:
        while pending and len(running) < max_concurrency:
            index, spec = pending.popleft()
            future = merge_batch.submit(
                spec,
                block,
                label=_label(index, spec),
                overwrite=overwrite,
                create_artifacts=create_artifacts,
            )
            running.append((index, future))

        finished = next(as_completed([future for _, future in running]))
        for position, (index, future) in enumerate(running):
            if future is finished:
                outcomes[index] = _outcome(index, specs[index], future)
                del running[position]
                break

    return [outcomes[index] for index in range(len(specs))]


def _outcome(
    index: int, spec: BatchSpec, future: PrefectFuture[dict[str, Any]]
) -> dict[str, Any]:
    outcome: dict[str, Any] = {
        "index": index,
        "output": str(Path(spec.output).expanduser().resolve()),
        "inputs": len(spec.sources),
        "status": "completed",
        "page_count": None,
        "job_id": None,
        "credits_used": 0,
        "error": None,
    }
    future.wait()
    state = future.state
    if state.is_completed():
        result = future.result()
        outcome["page_count"] = result["page_count"]
        outcome["job_id"] = result["job_id"]
        outcome["credits_used"] = result["credits_used"]
        return outcome

    error = state.result(raise_on_failure=False)
    outcome["status"] = "failed"
    outcome["error"] = _describe(error, state.message)
    outcome["job_id"] = getattr(error, "job_id", None)
    return outcome


def _describe(error: object, state_message: str | None) -> str:
    if isinstance(error, PdfcoError):
        return f"{type(error).__name__}: {error.message}"
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return state_message or "the merge ended without a result"


def _summarize(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    completed = [o for o in outcomes if o["status"] == "completed"]
    return {
        "batches": outcomes,
        "completed": len(completed),
        "failed": len(outcomes) - len(completed),
        "pages": sum(o["page_count"] for o in completed),
        "credits_used": sum(o["credits_used"] for o in completed),
    }


def _failure_message(outcomes: list[dict[str, Any]]) -> str:
    failed = [o for o in outcomes if o["status"] == "failed"]
    lines = [f"{len(failed)} of {len(outcomes)} merges failed:"]
    lines += [f"- batch {o['index']} ({o['output']}): {o['error']}" for o in failed]
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    with open(sys.argv[1], encoding="utf-8") as stream:
        print(json.dumps(merge_batches(json.load(stream)), indent=2))
