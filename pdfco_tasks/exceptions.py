"""Exceptions raised by pdfco-tasks.

Every error that the library raises derives from `PdfcoError`:

    PdfcoError
    ├── PreflightError            (bad inputs found before any credit is spent)
    ├── ConfigurationError        (missing API key, invalid settings)
    ├── ApiError                  (PDF.co returned an error)
    │   ├── AuthenticationError   401
    │   ├── InsufficientCreditsError  402, or 403 that mentions credits
    │   ├── InputRejectedError    400, 403, 415, 441, 442 and other input errors
    │   ├── RateLimitedError      429                         (transient)
    │   ├── ServerTimeoutError    408, 445                    (transient)
    │   └── ServerError           5xx                         (transient)
    ├── TransportError            connection failure or read timeout (transient)
    │   └── SubmissionUnconfirmedError  merge sent, no answer: a job may exist
    ├── JobFailedError            job ended failed, aborted or unknown
    ├── JobTimeoutError           job still working at the polling deadline
    ├── ResultExpiredError        the result link expired before download
    ├── DownloadError             the download was cut short or is not a PDF
    ├── BudgetExceededError       remaining credits below the configured minimum
    ├── ValidationError           merged PDF does not match its inputs
    └── BatchFailedError          one or more merges of a batch run failed

Messages never contain the API key or the query string of a signed URL. All
exceptions pickle, so they survive process and Dask task runners.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BatchFailedError",
    "BudgetExceededError",
    "ConfigurationError",
    "DownloadError",
    "InputRejectedError",
    "InsufficientCreditsError",
    "JobFailedError",
    "JobTimeoutError",
    "PdfcoError",
    "PreflightError",
    "RateLimitedError",
    "ResultExpiredError",
    "ServerError",
    "ServerTimeoutError",
    "SubmissionUnconfirmedError",
    "TransportError",
    "ValidationError",
]


class PdfcoError(Exception):
    """Raised for any failure of pdfco-tasks; the root of the hierarchy.

    Attributes:
        message: Human-readable description, safe to log.
        transient: Whether retrying the same call may succeed.
    """

    transient: bool = False

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.context))

    def __str__(self) -> str:
        return self.message


def _rebuild(
    cls: type[PdfcoError], message: str, context: dict[str, Any]
) -> PdfcoError:
    return cls(message, **context)


class PreflightError(PdfcoError, ValueError):
    """Raised when inputs are unusable before anything is uploaded.

    Attributes:
        problems: One `(source, reason)` pair per bad input.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.problems: list[tuple[str, str]] = list(context.get("problems", []))


class ConfigurationError(PdfcoError, ValueError):
    """Raised when settings are missing or invalid, such as an absent API key."""


class ApiError(PdfcoError):
    """Raised when PDF.co responds with an error status or `error: true`.

    Attributes:
        status_code: The HTTP status, or the body's `status` when the HTTP status
            was 200.
        endpoint: The API path that failed, such as `/pdf/merge2`.
        job_id: The job id, when the call concerned a job.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.status_code: int | None = context.get("status_code")
        self.endpoint: str | None = context.get("endpoint")
        self.job_id: str | None = context.get("job_id")
        self.retry_after: float | None = context.get("retry_after")


class AuthenticationError(ApiError):
    """Raised when the API key is missing or unknown (HTTP 401)."""


class InsufficientCreditsError(ApiError):
    """Raised when the account has too few credits (HTTP 402)."""


class InputRejectedError(ApiError, ValueError):
    """Raised when PDF.co rejects a parameter or an input document.

    Attributes:
        source: The input that PDF.co named, when it could be identified.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.source: str | None = context.get("source")


class RateLimitedError(ApiError):
    """Raised when PDF.co responds 429 Too Many Requests."""

    transient = True


class ServerTimeoutError(ApiError):
    """Raised when PDF.co reports a processing timeout (HTTP 408 or 445)."""

    transient = True


class ServerError(ApiError):
    """Raised when PDF.co answers with a 5xx status."""

    transient = True


class TransportError(PdfcoError):
    """Raised when a connection fails or a response does not arrive in time."""

    transient = True


class SubmissionUnconfirmedError(TransportError):
    """Raised when a merge request was sent but its answer never arrived.

    PDF.co may have created the job. Sending the request again could start a
    second, separately charged job, so this error is not transient: the caller
    decides whether to submit again.
    """

    transient = False


class JobFailedError(PdfcoError):
    """Raised when a merge job ends `failed`, `aborted` or `unknown`.

    Attributes:
        job_id: The PDF.co job id.
        status: The terminal job status.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.job_id: str | None = context.get("job_id")
        self.status: str | None = context.get("status")


class JobTimeoutError(PdfcoError, TimeoutError):
    """Raised when a job is still `working` at the polling deadline."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.job_id: str | None = context.get("job_id")


class ResultExpiredError(PdfcoError):
    """Raised when a result link has expired and cannot be produced again."""


class DownloadError(PdfcoError):
    """Raised when a download is incomplete or its content is not a whole PDF."""

    transient = True


class BudgetExceededError(PdfcoError):
    """Raised when remaining credits are below the configured minimum."""


class ValidationError(PdfcoError):
    """Raised when the merged PDF does not match what its inputs add up to.

    Attributes:
        kept_path: Where the rejected file was kept for inspection, if anywhere.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.kept_path: str | None = context.get("kept_path")


class BatchFailedError(PdfcoError):
    """Raised when at least one merge of a `merge_batches` run failed.

    The other merges ran to the end. Their outputs are in place.

    Attributes:
        outcomes: One dict per batch, in input order, as `merge_batches`
            would have returned them.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.outcomes: list[dict[str, Any]] = list(context.get("outcomes", []))
