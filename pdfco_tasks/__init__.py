"""Merge documents into one PDF through PDF.co, from Prefect, notebooks and the shell.

The package root exports the credentials block, the client with its settings,
the typed values passed between merge steps and every exception. Tasks live in
`pdfco_tasks.tasks` and flows in the top-level `flows` package.

Importing the package makes no network call and no Prefect API call, and it
imports Prefect only when Prefect is already loaded. Prefect imports this
package when it loads installed collections, and the block is defined then, so
a self-hosted server registers the `pdfco-credentials` block type at startup.
`prefect block register -m pdfco_tasks` does the same for Prefect Cloud or a
server that does not have the package installed. Processes that never load
Prefect, such as the sandbox, pay nothing for it: the block and the client are
imported on first access.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from pdfco_tasks.exceptions import (
    ApiError,
    AuthenticationError,
    BatchFailedError,
    BudgetExceededError,
    ConfigurationError,
    DownloadError,
    InputRejectedError,
    InsufficientCreditsError,
    JobFailedError,
    JobTimeoutError,
    PdfcoError,
    PreflightError,
    RateLimitedError,
    ResultExpiredError,
    ServerError,
    ServerTimeoutError,
    SubmissionUnconfirmedError,
    TransportError,
    ValidationError,
)
from pdfco_tasks.models import (
    InputSpec,
    JobStatus,
    MergeJob,
    MergeResult,
    PageSpan,
    UploadedFile,
)
from pdfco_tasks.settings import PdfcoSettings, PollingPolicy, RetryPolicy

if TYPE_CHECKING:
    from pdfco_tasks.client import PdfcoClient
    from pdfco_tasks.credentials import PdfcoCredentials
    from pdfco_tasks.notebook import merge
    from pdfco_tasks.ratelimit import RequestRateLimiter

__version__ = "0.1.0"

_LAZY_EXPORTS = {
    "PdfcoClient": "pdfco_tasks.client",
    "PdfcoCredentials": "pdfco_tasks.credentials",
    "RequestRateLimiter": "pdfco_tasks.ratelimit",
    "merge": "pdfco_tasks.notebook",
}

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BatchFailedError",
    "BudgetExceededError",
    "ConfigurationError",
    "DownloadError",
    "InputRejectedError",
    "InputSpec",
    "InsufficientCreditsError",
    "JobFailedError",
    "JobStatus",
    "JobTimeoutError",
    "MergeJob",
    "MergeResult",
    "PageSpan",
    "PdfcoClient",
    "PdfcoCredentials",
    "PdfcoError",
    "PdfcoSettings",
    "PollingPolicy",
    "PreflightError",
    "RateLimitedError",
    "RequestRateLimiter",
    "ResultExpiredError",
    "RetryPolicy",
    "ServerError",
    "ServerTimeoutError",
    "SubmissionUnconfirmedError",
    "TransportError",
    "UploadedFile",
    "ValidationError",
    "__version__",
    "merge",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pdfco_tasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if "prefect" in sys.modules:
    # Prefect is loading collections, or the caller already uses Prefect. Define
    # the block now, so it lands in Prefect's block registry.
    from pdfco_tasks.credentials import PdfcoCredentials
