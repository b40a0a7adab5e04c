"""The Prefect credentials block for PDF.co."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr

from pdfco_tasks.settings import (
    DEFAULT_BASE_URL,
    PdfcoSettings,
    PollingPolicy,
    RetryPolicy,
)

if TYPE_CHECKING:
    from pdfco_tasks.client import PdfcoClient

__all__ = ["PdfcoCredentials"]


class PdfcoCredentials(CredentialsBlock):
    """Credentials and connection settings for the PDF.co Web API.

    Fields left empty fall back to the environment: `PDFCO_API_KEY` for the key
    and `PDFCO_BASE_URL` for the API root.

    Example:
        Load stored credentials and check the balance:
        ```python
        from pdfco_tasks import PdfcoCredentials

        pdfco_credentials = PdfcoCredentials.load("BLOCK_NAME")
        with pdfco_credentials.get_client() as client:
            print(client.get_balance())
        ```
    """

    _block_type_name = "PDF.co Credentials"
    _block_type_slug = "pdfco-credentials"
    # TODO: no public https copy of pdfco_tasks/assets/logo.png exists yet, so the
    # block shows Prefect's default icon in the UI.
    _logo_url = None
    _documentation_url = "https://developer.pdf.co/api-reference/merge/various-files"  # type: ignore[assignment]

    api_key: SecretStr | None = Field(
        default=None,
        title="API key",
        description="The PDF.co API key; when empty, PDFCO_API_KEY is used.",
    )
    base_url: str | None = Field(
        default=None,
        title="Base URL",
        description=(
            "API root including /v1, for example a local sandbox; when empty, "
            f"PDFCO_BASE_URL or {DEFAULT_BASE_URL} is used."
        ),
    )
    connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds allowed to open a connection."
    )
    read_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds allowed for PDF.co to respond to a call.",
    )
    transfer_timeout: float = Field(
        default=300.0,
        gt=0,
        description="Seconds allowed between bytes of an upload or a download.",
    )
    retry_attempts: int = Field(
        default=RetryPolicy.max_attempts,
        ge=1,
        le=20,
        description=(
            "Attempts per HTTP call, the first one included, before a transient "
            "failure (429, 408, 445, 5xx, reset, timeout) is raised."
        ),
    )
    retry_base_delay: float = Field(
        default=RetryPolicy.base_delay,
        ge=0,
        description=(
            "Seconds of the first retry delay, which doubles per retry up to "
            f"{RetryPolicy.max_delay:g} s with full jitter."
        ),
    )
    job_deadline: float = Field(
        default=1800.0,
        gt=0,
        description="Seconds a merge job may stay in the working state.",
    )
    expiration_minutes: int = Field(
        default=60,
        ge=1,
        le=1440,
        description="Minutes PDF.co keeps a merge result; plans cap it at 60 to 1440.",
    )
    min_remaining_credits: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Nothing is submitted when the balance is below this; empty disables it."
        ),
    )
    requests_per_second: float | None = Field(
        default=None,
        gt=0,
        title="Requests per second",
        description=(
            "Maximum HTTP calls per second from one process to PDF.co, which "
            "allows 2 on free plans and 10 on paid ones; empty means no limit."
        ),
    )

    def get_settings(self) -> PdfcoSettings:
        """Resolve the block and the environment into client settings.

        Raises:
            ConfigurationError: When neither the block nor PDFCO_API_KEY gives a key.
        """
        api_key = self.api_key.get_secret_value() if self.api_key else None
        return PdfcoSettings.from_env(
            os.environ,
            api_key=api_key or None,
            base_url=self.base_url or None,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            transfer_timeout=self.transfer_timeout,
            retry=RetryPolicy(
                max_attempts=self.retry_attempts, base_delay=self.retry_base_delay
            ),
            polling=PollingPolicy(deadline=self.job_deadline),
            expiration_minutes=self.expiration_minutes,
            min_remaining_credits=self.min_remaining_credits,
            requests_per_second=self.requests_per_second,
        )

    def get_client(self, **kwargs: Any) -> PdfcoClient:
        """Create a client; keyword arguments go to `PdfcoClient`.

        Returns:
            A client that should be closed, for example with a `with` block.
        """
        from pdfco_tasks.client import PdfcoClient

        return PdfcoClient(self.get_settings(), **kwargs)
