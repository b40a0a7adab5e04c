"""Typed settings for the PDF.co client, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from pdfco_tasks.exceptions import ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "PdfcoSettings",
    "PollingPolicy",
    "RetryPolicy",
    "default_state_dir",
]

DEFAULT_BASE_URL = "https://api.pdf.co/v1"


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of transient failures: exponential backoff with full jitter.

    Attributes:
        max_attempts: Attempts per HTTP call, the first one included.
        base_delay: Delay before the first retry, in seconds.
        max_delay: Upper bound of any single delay, in seconds.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0


@dataclass(frozen=True)
class PollingPolicy:
    """How a job is polled: short first intervals backing off to a cap.

    Every job check costs PDF.co credits, so intervals grow geometrically.

    Attributes:
        first_interval: Delay before the first check, in seconds.
        max_interval: Upper bound of the interval, in seconds.
        backoff: Factor applied to the interval after each `working` response.
        deadline: Seconds after submission at which waiting fails.
        force_check_after: Seconds in `working` after which one check is sent with
            `force=true`, so an unknown job id is detected.
    """

    first_interval: float = 0.25
    max_interval: float = 10.0
    backoff: float = 1.6
    deadline: float = 1800.0
    force_check_after: float = 120.0


@dataclass(frozen=True)
class PdfcoSettings:
    """Everything the client needs to reach PDF.co.

    Attributes:
        api_key: The `x-api-key` value. Never logged.
        base_url: API root including `/v1`.
        connect_timeout: Seconds to establish a connection.
        read_timeout: Seconds to wait for a response to an API call.
        transfer_timeout: Seconds between bytes of an upload or download.
        retry: Policy for transient failures.
        polling: Policy for waiting on jobs.
        expiration_minutes: Lifetime of merge results on PDF.co.
        min_remaining_credits: Below this balance nothing is submitted; `None`
            disables the check.
        state_dir: Directory of the job store, which remembers submitted jobs
            and uploads so that re-runs resume instead of paying again.
        requests_per_second: Maximum HTTP calls per second that the process
            sends to this account. PDF.co allows 2 on free plans and 10 on
            paid ones. `None` sends calls as fast as they come.
    """

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    transfer_timeout: float = 300.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    polling: PollingPolicy = field(default_factory=PollingPolicy)
    expiration_minutes: int = 60
    min_remaining_credits: int | None = None
    state_dir: Path = field(default_factory=lambda: default_state_dir(os.environ))
    requests_per_second: float | None = None

    def __post_init__(self) -> None:
        # Keys read from files often end in a newline, which HTTP headers reject.
        object.__setattr__(self, "api_key", self.api_key.strip())
        if not self.api_key:
            raise ConfigurationError(
                "No PDF.co API key: set the PDFCO_API_KEY environment variable or "
                "the api_key field of a PdfcoCredentials block."
            )
        if not _is_header_safe(self.api_key):
            # The message must not quote the key.
            raise ConfigurationError(
                "The PDF.co API key contains spaces, control characters or "
                "non-ASCII characters; check PDFCO_API_KEY or the block's api_key."
            )
        _check_base_url(self.base_url)
        if self.requests_per_second is not None and not self.requests_per_second > 0:
            raise ConfigurationError(
                "requests_per_second must be a positive number or None, "
                f"not {self.requests_per_second!r}."
            )
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if not self.base_url.endswith("/v1"):
            raise ConfigurationError(
                "base_url must be the API root ending in /v1, such as "
                f"{DEFAULT_BASE_URL}, not {self.base_url!r}."
            )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> PdfcoSettings:
        """Build settings from `PDFCO_API_KEY` and `PDFCO_BASE_URL`.

        Arguments given in `overrides` win over the environment.

        Raises:
            ConfigurationError: When no API key is found.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "api_key": env.get("PDFCO_API_KEY", ""),
            "base_url": env.get("PDFCO_BASE_URL", "") or DEFAULT_BASE_URL,
            "state_dir": default_state_dir(env),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def with_changes(self, **changes: object) -> PdfcoSettings:
        """Return a copy with the given fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """Return `$PDFCO_TASKS_HOME`, else `~/.cache/pdfco-tasks`."""
    configured = environ.get("PDFCO_TASKS_HOME")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "pdfco-tasks"


def _is_header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable() and " " not in value


def _check_base_url(base_url: str) -> None:
    """Raise ConfigurationError unless `base_url` is an http(s) URL with a host."""
    if not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"base_url must start with http:// or https://, not {base_url!r}."
        )
    parts = urlsplit(base_url)
    try:
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError:
        raise ConfigurationError(
            f"base_url has an invalid port: {base_url!r}; ports are 1-65535."
        ) from None
    if not parts.hostname or not _is_header_safe(parts.netloc):
        raise ConfigurationError(
            f"base_url has no valid host: {base_url!r}; use a form like "
            f"{DEFAULT_BASE_URL}."
        )
