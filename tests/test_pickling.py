"""Everything that crosses a process boundary survives pickle and cloudpickle.

Process and Dask task runners pickle task inputs, results and exceptions, so
the credentials block, every exception class and the values passed between
merge steps must come back equal, with their attributes.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import cloudpickle  # type: ignore[import-untyped]
import pytest
from pydantic import SecretStr

import pdfco_tasks.exceptions as exceptions_module
from flows.merge_batches import BatchSpec
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import PdfcoError
from pdfco_tasks.models import (
    InputSpec,
    JobStatus,
    MergeJob,
    MergeResult,
    PageSpan,
    UploadedFile,
)

PICKLERS: list[Any] = [
    pytest.param(lambda v: pickle.loads(pickle.dumps(v)), id="pickle"),
    pytest.param(lambda v: cloudpickle.loads(cloudpickle.dumps(v)), id="cloudpickle"),
]

EXCEPTION_CLASSES = [
    getattr(exceptions_module, name) for name in exceptions_module.__all__
]

CONTEXT: dict[str, Any] = {
    "status_code": 429,
    "endpoint": "/pdf/merge2",
    "job_id": "JOB-1",
    "retry_after": 2.5,
    "source": "report.pdf",
    "status": "failed",
    "kept_path": "/tmp/out.rejected.pdf",
    "problems": [("a.pdf", "file not found")],
    "outcomes": [{"index": 0, "status": "failed"}],
}

VALUES = [
    pytest.param(
        InputSpec(
            source="a.pdf",
            kind="pdf",
            size=10,
            sha256="ab" * 32,
            min_pages=2,
            exact=True,
            content_type="application/pdf",
            notes=("count differs",),
        ),
        id="input-spec",
    ),
    pytest.param(
        UploadedFile(
            source="a.pdf",
            url="https://files.example/a.pdf?signature=x",
            sha256="ab" * 32,
            uploaded_at=1.0,
            expires_at=2.0,
            credits=1,
        ),
        id="uploaded-file",
    ),
    pytest.param(
        UploadedFile(source="https://x/a.pdf", url="https://x/a.pdf"), id="url"
    ),
    pytest.param(
        MergeJob(
            job_id="JOB-1",
            result_url="https://files.example/out.pdf?signature=x",
            name="out.pdf",
            submitted_at=1.0,
            expires_at=3601.0,
            credits=2,
            remaining_credits=98,
            resumed=True,
        ),
        id="merge-job",
    ),
    pytest.param(
        JobStatus(
            job_id="JOB-1",
            status="success",
            url="https://files.example/out.pdf?signature=x",
            page_count=5,
            credits=2,
            remaining_credits=96,
            job_duration_ms=120,
            polling_credits=4,
        ),
        id="job-status",
    ),
    pytest.param(
        MergeResult(
            output="/tmp/out.pdf",
            page_count=5,
            spans=(PageSpan("a.pdf", 1, 2), PageSpan("b.pdf", 3, 5)),
            job_id="JOB-1",
            credits_used=10,
            remaining_credits=90,
            durations={"total": 1.5},
        ),
        id="merge-result",
    ),
    pytest.param(BatchSpec(sources=["a.pdf"], output="o.pdf"), id="batch-spec"),
]


@pytest.mark.parametrize("round_trip", PICKLERS)
def test_block_round_trip_keeps_secret(round_trip: Callable[[Any], Any]) -> None:
    block = PdfcoCredentials(
        api_key=SecretStr("secret-key"),
        base_url="http://127.0.0.1:9/v1",
        requests_per_second=2.0,
    )

    copy = round_trip(block)

    assert isinstance(copy, PdfcoCredentials)
    assert copy == block
    assert copy.api_key is not None
    assert copy.api_key.get_secret_value() == "secret-key"
    assert copy.get_settings().requests_per_second == 2.0


@pytest.mark.parametrize("round_trip", PICKLERS)
@pytest.mark.parametrize("cls", EXCEPTION_CLASSES, ids=lambda cls: cls.__name__)
def test_exception_round_trip(
    cls: type[PdfcoError], round_trip: Callable[[Any], Any]
) -> None:
    error = cls(f"{cls.__name__} happened", **CONTEXT)

    copy = round_trip(error)

    assert type(copy) is cls
    assert str(copy) == f"{cls.__name__} happened"
    assert copy.message == error.message
    assert copy.context == error.context
    assert copy.transient == error.transient
    for attribute in ("status_code", "job_id", "kept_path", "problems", "outcomes"):
        assert getattr(copy, attribute, None) == getattr(error, attribute, None)


def test_every_exception_is_listed() -> None:
    defined = {
        value
        for value in vars(exceptions_module).values()
        if isinstance(value, type) and issubclass(value, PdfcoError)
    }

    assert defined == set(EXCEPTION_CLASSES)


@pytest.mark.parametrize("round_trip", PICKLERS)
@pytest.mark.parametrize("value", VALUES)
def test_step_value_round_trip(value: Any, round_trip: Callable[[Any], Any]) -> None:
    copy = round_trip(value)

    assert type(copy) is type(value)
    assert copy == value
