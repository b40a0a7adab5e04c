"""The flows on Prefect's process pool task runner, where every task input,
result and exception crosses a pickle boundary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.task_runners import ProcessPoolTaskRunner
from pydantic import SecretStr
from pypdf import PdfReader

from flows.merge_batches import BatchSpec, merge_batches
from flows.merge_documents import merge_documents
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import BatchFailedError
from tests.factories import make_pdf

KEY = "process-key"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    from pdfco_tasks.sandbox import Sandbox

    with Sandbox(api_keys=(KEY,)) as server:
        yield server


@pytest.fixture
def credentials(sandbox: Any, state_dir: Path) -> PdfcoCredentials:
    return PdfcoCredentials(api_key=SecretStr(KEY), base_url=sandbox.base_url)


def test_mapped_uploads_in_processes(
    tmp_path: Path, credentials: PdfcoCredentials
) -> None:
    first = make_pdf(tmp_path, "first.pdf", 2, size=(201, 300))
    second = make_pdf(tmp_path, "second.pdf", 3, size=(202, 300))
    output = tmp_path / "merged.pdf"
    # ProcessPoolTaskRunner's futures type does not match the annotation of
    # `with_options` in Prefect 3.9.1, although Prefect documents this use.
    runner: Any = ProcessPoolTaskRunner(max_workers=2)
    flow = merge_documents.with_options(task_runner=runner)

    result = flow([str(first), str(second)], str(output), credentials=credentials)

    assert result["page_count"] == 5
    assert len(PdfReader(output).pages) == 5


def test_batch_error_crosses_processes(
    tmp_path: Path, credentials: PdfcoCredentials
) -> None:
    good = make_pdf(tmp_path, "good.pdf", 2, size=(203, 300))
    batches = [
        BatchSpec(sources=[str(good)], output=str(tmp_path / "good-out.pdf")),
        BatchSpec(
            sources=[str(tmp_path / "absent.pdf")], output=str(tmp_path / "bad.pdf")
        ),
    ]
    runner: Any = ProcessPoolTaskRunner(max_workers=2)
    flow = merge_batches.with_options(task_runner=runner)

    with pytest.raises(BatchFailedError, match="1 of 2 merges failed") as caught:
        flow(batches, credentials=credentials, requests_per_second=None)

    outcomes = caught.value.outcomes
    assert outcomes[0]["status"] == "completed"
    assert outcomes[0]["page_count"] == 2
    assert outcomes[1]["status"] == "failed"
    assert outcomes[1]["error"].startswith("PreflightError: ")
    assert "absent.pdf: file not found" in outcomes[1]["error"]
    assert len(PdfReader(tmp_path / "good-out.pdf").pages) == 2
