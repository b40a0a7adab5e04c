"""The budget guard and expired result links, end to end through `merge_documents`.

Expiry is reached without waiting. A progress listener moves the sandbox clock
past the result's lifetime when the poll stage ends, so the link is dead by
the time the download task runs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr
from pypdf import PdfReader

from flows.merge_documents import merge_documents
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import BudgetExceededError, ResultExpiredError
from pdfco_tasks.progress import ProgressEvent, subscribe
from pdfco_tasks.sandbox import Sandbox
from tests.factories import make_pdf

API_KEY = "budget-key"
PRESIGNED_URL_COST = 7
EXPIRATION_MINUTES = 1
PAST_EXPIRY_SECONDS = 2 * 60 * EXPIRATION_MINUTES
UPLOAD_LIFETIME_SECONDS = 3600

SandboxFactory = Callable[..., Sandbox]


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    directory = tmp_path / "inputs"
    directory.mkdir()
    first = make_pdf(directory, "first.pdf", 3)
    second = make_pdf(directory, "second.pdf", 2)
    return [str(first), str(second)]


@pytest.fixture
def output(tmp_path: Path) -> Path:
    return tmp_path / "out" / "merged.pdf"


def credentials_for(sandbox: Sandbox, **fields: object) -> PdfcoCredentials:
    return PdfcoCredentials(
        api_key=SecretStr(API_KEY),
        base_url=sandbox.base_url,
        retry_base_delay=0.01,
        **fields,  # type: ignore[arg-type]
    )


def listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@contextmanager
def expire_results(sandbox: Sandbox, times: int) -> Iterator[list[str]]:
    """Move the sandbox clock past the result expiry after the first `times` waits.

    Yields:
        The ids of the jobs whose results were expired, in order.
    """
    expired: list[str] = []

    def on_event(event: ProgressEvent) -> None:
        if event.stage == "poll" and event.finished and len(expired) < times:
            expired.append(event.subject)
            sandbox.clock.advance(PAST_EXPIRY_SECONDS)

    with subscribe(on_event):
        yield expired


class TestBudgetGuard:
    def test_low_balance_stops_before_merge(
        self,
        pdfco_sandbox_factory: SandboxFactory,
        inputs: list[str],
        output: Path,
        state_dir: Path,
    ) -> None:
        sandbox = pdfco_sandbox_factory(api_keys=(API_KEY,), credits=100)
        credentials = credentials_for(sandbox, min_remaining_credits=500)
        balance = 100

        with pytest.raises(
            BudgetExceededError,
            match=rf"PDF.co balance is {balance} credits, below the "
            r"min_remaining_credits of 500; nothing was submitted\. Top up the "
            r"account or lower min_remaining_credits\.",
        ) as caught:
            merge_documents(inputs, str(output), credentials=credentials)

        counters = sandbox.counters()
        assert caught.value.context == {"remaining_credits": balance, "minimum": 500}
        assert counters["merge_submissions_total"] == 0
        assert counters["presigned_urls"] == 0
        assert counters["requests"]["GET /v1/account/credit/balance"] == {"200": 1}
        assert sandbox.balance() == balance
        assert listing(output.parent) == []

    def test_balance_at_minimum_merges(
        self,
        pdfco_sandbox_factory: SandboxFactory,
        inputs: list[str],
        output: Path,
        state_dir: Path,
    ) -> None:
        sandbox = pdfco_sandbox_factory(api_keys=(API_KEY,), credits=100)
        minimum = 100 - 2 * PRESIGNED_URL_COST
        credentials = credentials_for(sandbox, min_remaining_credits=minimum)

        result = merge_documents(inputs, str(output), credentials=credentials)

        assert result["page_count"] == 5
        assert sandbox.counters()["merge_submissions_total"] == 1


class TestExpiredResult:
    def test_expired_link_resubmitted_once(
        self,
        pdfco_sandbox_factory: SandboxFactory,
        inputs: list[str],
        output: Path,
        state_dir: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        sandbox = pdfco_sandbox_factory(api_keys=(API_KEY,))
        credentials = credentials_for(sandbox, expiration_minutes=EXPIRATION_MINUTES)
        caplog.set_level(logging.WARNING)

        with expire_results(sandbox, times=1) as expired:
            result = merge_documents(inputs, str(output), credentials=credentials)

        counters = sandbox.counters()
        assert len(expired) == 1
        assert result["job_id"] != expired[0]
        assert result["page_count"] == 5
        assert len(PdfReader(output).pages) == 5
        assert counters["merge_submissions_total"] == 2
        assert counters["requests"]["GET file"] == {"403": 1, "200": 1, "206": 2}
        assert counters["puts"] == 2
        assert listing(output.parent) == ["merged.pdf"]
        assert (
            f"The result of job {expired[0]} expired before download; submitting "
            "again" in caplog.messages
        )

    def test_second_expiry_raises_result_expired(
        self,
        pdfco_sandbox_factory: SandboxFactory,
        inputs: list[str],
        output: Path,
        state_dir: Path,
    ) -> None:
        sandbox = pdfco_sandbox_factory(api_keys=(API_KEY,))
        credentials = credentials_for(sandbox, expiration_minutes=EXPIRATION_MINUTES)

        with (
            expire_results(sandbox, times=2) as expired,
            pytest.raises(ResultExpiredError) as caught,
        ):
            merge_documents(inputs, str(output), credentials=credentials)

        assert len(expired) == 2
        assert re.fullmatch(
            rf"The result link of job {re.escape(expired[1])} returned HTTP 403 "
            r"although it is valid until \S+; PDF.co may have deleted the result\. "
            r"Run the merge again\.",
            str(caught.value),
        )
        assert caught.value.context["job_id"] == expired[1]
        assert sandbox.counters()["merge_submissions_total"] == 2
        assert listing(output.parent) == []


class TestDeletedUploads:
    def test_rerun_an_hour_later_uploads_again(
        self,
        pdfco_sandbox_factory: SandboxFactory,
        inputs: list[str],
        output: Path,
        state_dir: Path,
    ) -> None:
        sandbox = pdfco_sandbox_factory(api_keys=(API_KEY,))
        credentials = credentials_for(sandbox)
        first = merge_documents(inputs, str(output), credentials=credentials)
        # PDF.co deletes uploads and results after an hour of its own clock,
        # which here runs ahead of the client's: the job store still lists both.
        sandbox.clock.advance(UPLOAD_LIFETIME_SECONDS + 100)

        second = merge_documents(
            inputs, str(output), credentials=credentials, overwrite=True
        )

        counters = sandbox.counters()
        assert second["job_id"] != first["job_id"]
        assert second["resumed"] is False
        assert second["page_count"] == 5
        assert len(PdfReader(output).pages) == 5
        assert counters["puts"] == 4
        assert counters["merge_submissions_total"] == 2
        assert counters["jobs"] == {"success": 2}
        assert listing(output.parent) == ["merged.pdf"]
