"""Typed settings for the PDF.co client, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pdfco_tasks.exceptions import ConfigurationError

__all__ = ["DEFAULT_BASE_URL", "PdfcoSettings", "PollingPolicy", "RetryPolicy"]

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
        backoff: Factor applied to the interval after each `working` answer.
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

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ConfigurationError(
                "No PDF.co API key: set PDFCO_API_KEY or pass api_key."
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"base_url must start with http:// or https://, not {self.base_url!r}."
            )
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

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
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def with_changes(self, **changes: object) -> PdfcoSettings:
        """Return a copy with the given fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]
