"""Typed values passed between the steps of a merge.

All of them are frozen dataclasses of plain values, so they pickle, hash and
serialise to JSON through `to_dict()`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "InputKind",
    "InputSpec",
    "JobState",
    "JobStatus",
    "MergeJob",
    "MergeResult",
    "PageSpan",
    "UploadedFile",
]

InputKind = Literal[
    "pdf", "doc", "docx", "xls", "xlsx", "rtf", "txt", "image", "zip", "url"
]
JobState = Literal["working", "success", "failed", "aborted", "unknown"]


@dataclass(frozen=True)
class InputSpec:
    """Facts about one source, found by inspection before anything is uploaded.

    Attributes:
        source: The path or URL as the caller gave it.
        kind: Document type, from the extension and the leading bytes.
        size: Size in bytes; 0 for URLs.
        sha256: Hex digest of the content; empty for URLs.
        min_pages: Pages this input adds at least.
        exact: Whether `min_pages` is the exact count (PDFs and images) or a
            lower bound (office, text, ZIP and URL inputs).
        content_type: MIME type sent with the upload.
        notes: Warnings found while counting, such as a `/Count` that disagrees
            with the page tree.
    """

    source: str
    kind: InputKind
    size: int
    sha256: str
    min_pages: int
    exact: bool
    content_type: str = "application/octet-stream"
    notes: tuple[str, ...] = ()

    @property
    def is_url(self) -> bool:
        return self.kind == "url"

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class UploadedFile:
    """A local file stored on PDF.co, or a URL passed through unchanged.

    Attributes:
        source: The path or URL as the caller gave it.
        url: The URL that merge2 reads; signed, so never log it whole.
        sha256: Content digest of the uploaded bytes; empty for URLs.
        uploaded_at: Epoch seconds of the upload; 0 for URLs.
        expires_at: Epoch seconds after which PDF.co deletes the file.
        credits: Credits charged for the upload; 0 when reused or passed through.
    """

    source: str
    url: str = field(repr=False)
    sha256: str = ""
    uploaded_at: float = 0.0
    expires_at: float = float("inf")
    credits: int = 0

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class MergeJob:
    """A merge job accepted by PDF.co.

    Attributes:
        job_id: The PDF.co job id.
        result_url: Where the result appears once the job succeeds.
        name: Output file name sent with the request.
        submitted_at: Epoch seconds of the submission.
        expires_at: Epoch seconds after which the result link is gone.
        credits: Credits charged for the submission.
        remaining_credits: Balance after the submission.
        resumed: Whether this job was found in the job store instead of submitted.
    """

    job_id: str
    result_url: str = field(repr=False)
    name: str
    submitted_at: float
    expires_at: float
    credits: int = 0
    remaining_credits: int | None = None
    resumed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class JobStatus:
    """One response of `/job/check`.

    Attributes:
        job_id: The job that was checked.
        status: `working`, `success`, `failed`, `aborted` or `unknown`.
        url: Result URL, present on success.
        page_count: Pages of the result, when PDF.co reports them.
        credits: Credits charged for this check.
        remaining_credits: Balance after the check.
        message: PDF.co's message, for failures.
        error_code: PDF.co's `errorCode`, for failures.
        job_duration_ms: Processing time that PDF.co reports.
        polling_credits: Credits charged by all checks of the wait that
            produced this status, this one included.
    """

    job_id: str
    status: JobState
    url: str | None = field(default=None, repr=False)
    page_count: int | None = None
    credits: int = 0
    remaining_credits: int | None = None
    message: str | None = None
    error_code: int | None = None
    job_duration_ms: int | None = None
    polling_credits: int = 0

    @property
    def terminal(self) -> bool:
        return self.status != "working"

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class PageSpan:
    """Pages of the output that came from one input, 1-based and inclusive.

    Attributes:
        source: The input, as the caller gave it.
        first_page: First output page of this input.
        last_page: Last output page of this input.
    """

    source: str
    first_page: int
    last_page: int

    @property
    def pages(self) -> int:
        return self.last_page - self.first_page + 1

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class MergeResult:
    """The outcome of one merge, in JSON-friendly form.

    Attributes:
        output: Path of the validated PDF.
        page_count: Pages in the output.
        spans: Output pages per input, in input order.
        job_id: The PDF.co job id.
        credits_used: Credits charged by all calls of this merge.
        remaining_credits: Balance after the last call.
        durations: Seconds spent per step (`upload`, `merge`, `download`,
            `validate`, `total`).
        resumed: Whether an earlier job was resumed instead of submitting.
        notes: Warnings from validation, such as page spans that are estimates.
    """

    output: str
    page_count: int
    spans: tuple[PageSpan, ...]
    job_id: str
    credits_used: int
    remaining_credits: int | None
    durations: dict[str, float]
    resumed: bool = False
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


def _plain(value: Any) -> dict[str, Any]:
    data = asdict(value)
    for key, item in data.items():
        if isinstance(item, tuple):
            data[key] = list(item)
        elif item == float("inf"):
            data[key] = None
    return data
