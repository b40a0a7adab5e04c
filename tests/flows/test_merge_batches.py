"""The merge_batches flow on the real Prefect engine against the sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from pydantic import SecretStr
from pypdf import PdfReader

from flows.merge_batches import BatchSpec, merge_batches
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import BatchFailedError, PreflightError
from tests.factories import make_pdf

KEY = "batch-key"


@pytest.fixture
def start_sandbox(
    pdfco_sandbox_factory: Callable[..., Any], state_dir: Path
) -> Callable[..., Any]:
    def start(**kwargs: Any) -> Any:
        return pdfco_sandbox_factory(api_keys=(KEY,), **kwargs)

    return start


def credentials_for(sandbox: Any) -> PdfcoCredentials:
    return PdfcoCredentials(api_key=SecretStr(KEY), base_url=sandbox.base_url)


def make_batches(folder: Path, count: int) -> tuple[list[BatchSpec], list[int]]:
    """Write `count` document sets of two PDFs each; return them and page totals."""
    batches = []
    totals = []
    for index in range(count):
        first_pages = index % 3 + 1
        second_pages = index % 2 + 1
        first = make_pdf(folder, f"set{index}-a.pdf", first_pages)
        second = make_pdf(folder, f"set{index}-b.pdf", second_pages)
        output = folder / "out" / f"set{index}.pdf"
        batches.append(BatchSpec(sources=[str(first), str(second)], output=str(output)))
        totals.append(first_pages + second_pages)
    return batches, totals


def missing_input_batch(folder: Path, name: str) -> BatchSpec:
    return BatchSpec(
        sources=[str(folder / f"{name}-missing.pdf")],
        output=str(folder / f"{name}.pdf"),
    )


def read_artifact_data(key: str) -> Any:
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert artifacts, f"no artifact with key {key}"
    data = artifacts[0].data
    return json.loads(data) if isinstance(data, str) else data


@pytest.mark.slow
def test_batches_with_faults_respect_rate(
    tmp_path: Path, start_sandbox: Callable[..., Any]
) -> None:
    sandbox = start_sandbox(faults="429:0.1,500:0.05,reset:0.05", faults_seed=7)
    batches, totals = make_batches(tmp_path, 20)

    summary = merge_batches(
        batches,
        credentials=credentials_for(sandbox),
        max_concurrency=4,
        requests_per_second=5.0,
    )

    assert summary["completed"] == 20
    assert summary["failed"] == 0
    for outcome, batch, pages in zip(summary["batches"], batches, totals, strict=True):
        assert outcome["status"] == "completed"
        assert outcome["output"] == batch.output
        assert outcome["page_count"] == pages
        assert len(PdfReader(batch.output).pages) == pages
    assert summary["pages"] == sum(totals)
    faults = sandbox.counters()["faults"]
    assert sum(faults.values()) > 0, "no fault was injected"
    assert sandbox.max_requests_in_window(1.0) <= 5


def test_failed_batch_does_not_hide_others(
    tmp_path: Path, start_sandbox: Callable[..., Any]
) -> None:
    sandbox = start_sandbox()
    batches, totals = make_batches(tmp_path, 3)
    batches.insert(1, missing_input_batch(tmp_path, "x"))

    with pytest.raises(BatchFailedError, match=r"1 of 4 merges failed") as caught:
        merge_batches(batches, credentials=credentials_for(sandbox))

    message = str(caught.value)
    assert f"batch 1 ({tmp_path / 'x.pdf'})" in message
    assert "x-missing.pdf" in message
    outcomes = caught.value.outcomes
    assert [o["status"] for o in outcomes] == [
        "completed",
        "failed",
        "completed",
        "completed",
    ]
    assert outcomes[1]["error"].startswith("PreflightError: ")
    assert not (tmp_path / "x.pdf").exists()
    for outcome, pages in zip(
        [outcomes[0], outcomes[2], outcomes[3]], totals, strict=True
    ):
        assert outcome["page_count"] == pages
        assert len(PdfReader(outcome["output"]).pages) == pages


def test_failed_batch_fails_run(
    tmp_path: Path, start_sandbox: Callable[..., Any]
) -> None:
    sandbox = start_sandbox()

    state = merge_batches(
        [missing_input_batch(tmp_path, "n")],
        credentials=credentials_for(sandbox),
        return_state=True,
    )

    assert state.is_failed()
    assert "1 of 1 merges failed" in str(state.message)


def test_batch_table_artifact_lists_batches(
    tmp_path: Path, start_sandbox: Callable[..., Any]
) -> None:
    sandbox = start_sandbox()
    batches, _ = make_batches(tmp_path, 2)

    summary = merge_batches(
        batches, credentials=credentials_for(sandbox), artifact_key="test-batch-table"
    )

    rows = read_artifact_data("test-batch-table")
    assert [row["output"] for row in rows] == [b.output for b in batches]
    assert [row["job_id"] for row in rows] == [o["job_id"] for o in summary["batches"]]
    assert [row["status"] for row in rows] == ["completed", "completed"]


def test_batches_accept_plain_dicts(
    tmp_path: Path, start_sandbox: Callable[..., Any]
) -> None:
    sandbox = start_sandbox()
    batches, totals = make_batches(tmp_path, 1)
    plain = [batch.model_dump() for batch in batches]

    # Deployment parameters arrive as JSON objects. Prefect validates them into
    # BatchSpec through the flow's signature.
    summary = merge_batches(plain, credentials=credentials_for(sandbox))  # type: ignore[arg-type]

    assert summary["batches"][0]["page_count"] == totals[0]
    assert summary["batches"][0]["output"] == plain[0]["output"]


def test_batch_outputs_must_differ(
    tmp_path: Path, start_sandbox: Callable[..., Any]
) -> None:
    sandbox = start_sandbox()
    batches, _ = make_batches(tmp_path, 2)
    batches[1] = batches[1].model_copy(update={"output": batches[0].output})

    with pytest.raises(PreflightError, match="Batches 0 and 1 both write"):
        merge_batches(batches, credentials=credentials_for(sandbox))

    assert sandbox.counters()["merge_submissions_total"] == 0


def test_batch_concurrency_must_be_positive(
    tmp_path: Path, start_sandbox: Callable[..., Any]
) -> None:
    sandbox = start_sandbox()
    batches, _ = make_batches(tmp_path, 1)

    with pytest.raises(PreflightError, match="max_concurrency must be at least 1"):
        merge_batches(batches, credentials=credentials_for(sandbox), max_concurrency=0)


def test_batch_spec_rejects_unknown_field() -> None:
    with pytest.raises(ValueError, match="extra"):
        BatchSpec.model_validate({"sources": ["a.pdf"], "output": "o.pdf", "x": 1})


def test_batch_spec_requires_sources() -> None:
    with pytest.raises(ValueError, match="at least 1 item"):
        BatchSpec(sources=[], output="o.pdf")


def test_empty_batch_list_completes() -> None:
    summary = merge_batches([], credentials=PdfcoCredentials(api_key=SecretStr(KEY)))

    assert summary == {
        "batches": [],
        "completed": 0,
        "failed": 0,
        "pages": 0,
        "credits_used": 0,
    }


class TestBatchRetryCondition:
    """Only a busy Prefect API, never a failed merge, retries a batch."""

    @staticmethod
    def _failed_with(exc: BaseException) -> Any:
        from prefect.states import Failed

        return Failed(data=exc)

    @staticmethod
    def _http_error(status: int) -> BaseException:
        import httpx
        from prefect.exceptions import PrefectHTTPStatusError

        request = httpx.Request("POST", "http://127.0.0.1:1/api/flow_runs/")
        response = httpx.Response(status, request=request)
        return PrefectHTTPStatusError("server busy", request=request, response=response)

    def test_server_503_retried(self) -> None:
        from flows.merge_batches import _prefect_server_busy

        state = self._failed_with(self._http_error(503))

        assert _prefect_server_busy(None, None, state) is True

    def test_client_404_not_retried(self) -> None:
        from flows.merge_batches import _prefect_server_busy

        state = self._failed_with(self._http_error(404))

        assert _prefect_server_busy(None, None, state) is False

    def test_merge_failure_not_retried(self) -> None:
        from flows.merge_batches import _prefect_server_busy
        from pdfco_tasks.exceptions import JobFailedError

        state = self._failed_with(JobFailedError("job failed", job_id="J1"))

        assert _prefect_server_busy(None, None, state) is False
