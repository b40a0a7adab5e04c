"""Artifacts and events that make a merge visible in the Prefect UI.

Nothing here may fail a run: every call to Prefect's API is wrapped, and a
failure to publish is logged as a warning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.events import emit_event
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from pdfco_tasks.inspection import source_for_display
from pdfco_tasks.models import InputSpec, MergeResult

__all__ = [
    "EVENT_COMPLETED",
    "EVENT_FAILED",
    "EVENT_SUBMITTED",
    "JobProgress",
    "artifact_key",
    "emit_merge_event",
    "publish_markdown",
    "publish_merge_artifacts",
    "publish_table",
]

EVENT_SUBMITTED = "pdfco.merge.submitted"
EVENT_COMPLETED = "pdfco.merge.completed"
EVENT_FAILED = "pdfco.merge.failed"


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("pdfco_tasks")


@contextmanager
def _never_fail(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # publishing must never fail a run
        _logger().warning("Could not %s: %s: %s", what, type(exc).__name__, exc)


def artifact_key(output_name: str, suffix: str) -> str:
    """Build an artifact key from an output file name.

    Prefect accepts only lowercase letters, digits and dashes in keys.

    Example:
        >>> artifact_key("Nightly Report.pdf", "summary")
        'pdfco-nightly-report-summary'
    """
    stem = output_name.rsplit(".", 1)[0].lower()
    slug = re.sub(r"[^a-z0-9]+", "-", stem).strip("-") or "merge"
    return f"pdfco-{slug[:60]}-{suffix}"


def publish_merge_artifacts(
    result: MergeResult, inputs: Sequence[InputSpec], output_name: str
) -> None:
    """Create the markdown summary and the page-span table of one merge."""
    with _never_fail("create the merge summary artifact"):
        create_markdown_artifact(
            markdown=_summary_markdown(result, inputs),
            key=artifact_key(output_name, "summary"),
            description=f"PDF.co merge of {len(inputs)} inputs into {output_name}",
        )
    with _never_fail("create the page-span table artifact"):
        create_table_artifact(
            table=_span_rows(result, inputs),
            key=artifact_key(output_name, "pages"),
            description=f"Output pages of each input of {output_name}",
        )


def publish_table(table: list[dict[str, Any]], key: str, description: str) -> None:
    """Create a keyed table artifact; a failure is logged, never raised."""
    with _never_fail(f"create the {key} table artifact"):
        create_table_artifact(table=table, key=key, description=description)


def publish_markdown(markdown: str, key: str, description: str) -> None:
    """Create a keyed markdown artifact; a failure is logged, never raised."""
    with _never_fail(f"create the {key} markdown artifact"):
        create_markdown_artifact(markdown=markdown, key=key, description=description)


def _summary_markdown(result: MergeResult, inputs: Sequence[InputSpec]) -> str:
    remaining = (
        "unknown" if result.remaining_credits is None else result.remaining_credits
    )
    lines = [
        f"# Merged {len(inputs)} inputs into {result.page_count} pages",
        "",
        f"- **Output:** `{result.output}`",
        f"- **Job id:** `{result.job_id}`" + (" (resumed)" if result.resumed else ""),
        f"- **Credits used:** {result.credits_used}; remaining: {remaining}",
        f"- **Total time:** {result.durations.get('total', 0.0):.1f} s",
        "",
        "| # | Input | Kind | Pages | Output pages |",
        "|---|---|---|---|---|",
    ]
    for index, (spec, span) in enumerate(
        zip(inputs, result.spans, strict=True), start=1
    ):
        name = source_for_display(spec.source)
        lines.append(
            f"| {index} | {name} | {spec.kind} | {span.pages} "
            f"| {span.first_page}-{span.last_page} |"
        )
    return "\n".join(lines)


def _span_rows(
    result: MergeResult, inputs: Sequence[InputSpec]
) -> list[dict[str, Any]]:
    return [
        {
            "input": source_for_display(spec.source),
            "kind": spec.kind,
            "pages": span.pages,
            "first_page": span.first_page,
            "last_page": span.last_page,
        }
        for spec, span in zip(inputs, result.spans, strict=True)
    ]


def emit_merge_event(
    event: str, job_id: str | None, output_name: str, payload: dict[str, Any]
) -> None:
    """Emit a merge event whose resource id carries the PDF.co job id.

    Without a job id, the resource id is `pdfco.output.<output name>`.

    Automations can match `pdfco.merge.failed`, or read `remaining_credits`
    from the payload of `pdfco.merge.completed` to alert on a low balance.
    """
    # A merge that failed before PDF.co accepted a job is identified by its output.
    resource_id = f"pdfco.job.{job_id}" if job_id else f"pdfco.output.{output_name}"
    resource = {
        "prefect.resource.id": resource_id,
        "prefect.resource.name": output_name,
    }
    with _never_fail(f"emit the {event} event"):
        emit_event(event=event, resource=resource, payload=payload)


class JobProgress:
    """A progress artifact updated while a job is polled.

    PDF.co reports no percentage, so progress is the share of the polling
    deadline used, capped at 95 until the job ends.
    """

    def __init__(self, job_id: str, deadline: float) -> None:
        self._job_id = job_id
        self._deadline = deadline
        self._artifact_id: UUID | None = None

    def update(self, status: str, elapsed: float) -> None:
        """Publish the job's state after one check."""
        if status == "working":
            progress = min(95.0, 100.0 * elapsed / max(self._deadline, 1.0))
        else:
            progress = 100.0
        description = f"PDF.co job {self._job_id}: {status} after {elapsed:.1f} s"
        self._publish(progress, description)

    def _publish(self, progress: float, description: str) -> None:
        with _never_fail("update the job progress artifact"):
            if self._artifact_id is None:
                self._artifact_id = _create_progress(progress, description)
            else:
                update_progress_artifact(
                    artifact_id=self._artifact_id,
                    progress=progress,
                    description=description,
                )


def _create_progress(progress: float, description: str) -> UUID:
    # The call runs inside a sync task, where Prefect returns the UUID itself
    # rather than a coroutine.
    artifact_id = create_progress_artifact(progress=progress, description=description)
    if not isinstance(artifact_id, UUID):
        raise TypeError(f"expected a UUID from Prefect, got {type(artifact_id)!r}")
    return artifact_id
