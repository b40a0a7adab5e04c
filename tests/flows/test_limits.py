"""The optional pdfco-api and pdfco-merge global limits on a real API server.

Each test that creates a limit deletes it again, and the existence check is
made to re-read the server on every call, so the limit never reaches another
test.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from pydantic import SecretStr
from pypdf import PdfReader

import pdfco_tasks.limits as limits
from flows.merge_batches import BatchSpec, merge_batches
from flows.merge_documents import merge_documents
from pdfco_tasks.credentials import PdfcoCredentials
from tests.factories import make_pdf

KEY = "limit-key"
EVENT_SECONDS = 30.0


@pytest.fixture(autouse=True)
def _always_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "_RECHECK_SECONDS", 0.0)


@pytest.fixture
def create_limit() -> Iterator[Callable[..., UUID]]:
    """Create global limits for one test and delete them afterwards."""
    names: list[str] = []

    def create(name: str, limit: int, slot_decay_per_second: float = 0.0) -> UUID:
        with get_client(sync_client=True) as client:
            limit_id = client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(
                    name=name, limit=limit, slot_decay_per_second=slot_decay_per_second
                )
            )
        names.append(name)
        return limit_id

    yield create
    with get_client(sync_client=True) as client:
        for name in names:
            client.delete_global_concurrency_limit_by_name(name)


@pytest.fixture
def credentials(
    pdfco_sandbox_factory: Callable[..., Any], state_dir: Path
) -> PdfcoCredentials:
    sandbox = pdfco_sandbox_factory(api_keys=(KEY,))
    return PdfcoCredentials(api_key=SecretStr(KEY), base_url=sandbox.base_url)


def acquisitions(limit_id: UUID, expected: int) -> int:
    """Count `acquired` events of a limit, waiting until `expected` are stored."""
    event_filter = EventFilter(
        event=EventNameFilter(name=["prefect.concurrency-limit.acquired"]),
        resource=EventResourceFilter(id=[f"prefect.concurrency-limit.{limit_id}"]),
    )
    deadline = time.monotonic() + EVENT_SECONDS
    count = 0
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            # The server rejects pages above 50 events (Prefect 3.9.1).
            count = client.read_events(filter=event_filter, limit=50).total
            if count >= expected:
                break
            time.sleep(0.5)
    return count


def test_missing_limits_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    assert not limits.global_limit_exists(limits.RATE_LIMIT_NAME, rate=True)
    assert not limits.global_limit_exists(limits.MERGE_CONCURRENCY_NAME)
    limits.take_rate_limit_slot()
    with limits.merge_slot():
        pass

    assert "do not exist" not in caplog.text


def test_merge_slot_uses_existing_limit(
    tmp_path: Path, credentials: PdfcoCredentials, create_limit: Callable[..., UUID]
) -> None:
    limit_id = create_limit(limits.MERGE_CONCURRENCY_NAME, 3)
    batches = [
        BatchSpec(
            sources=[str(make_pdf(tmp_path, f"in{index}.pdf", index + 1))],
            output=str(tmp_path / f"out{index}.pdf"),
        )
        for index in range(2)
    ]

    summary = merge_batches(batches, credentials=credentials)

    assert summary["completed"] == 2
    assert acquisitions(limit_id, 2) == 2


def test_rate_limit_taken_per_call(
    tmp_path: Path, credentials: PdfcoCredentials, create_limit: Callable[..., UUID]
) -> None:
    limit_id = create_limit(limits.RATE_LIMIT_NAME, 100, slot_decay_per_second=100.0)
    source = make_pdf(tmp_path, "rated.pdf", 2)

    result = merge_documents(
        [str(source)], str(tmp_path / "rated-out.pdf"), credentials
    )

    assert len(PdfReader(result["output"]).pages) == 2
    # At least: presigned URL, upload, merge, job check and download.
    assert acquisitions(limit_id, 5) >= 5


def test_limit_without_decay_not_a_rate_limit(
    create_limit: Callable[..., UUID], caplog: pytest.LogCaptureFixture
) -> None:
    create_limit(limits.RATE_LIMIT_NAME, 5)
    caplog.set_level(logging.WARNING, logger="pdfco_tasks")

    usable = limits.global_limit_exists(limits.RATE_LIMIT_NAME, rate=True)

    assert not usable
    assert "has no slot decay" in caplog.text
    assert limits.global_limit_exists(limits.RATE_LIMIT_NAME)
