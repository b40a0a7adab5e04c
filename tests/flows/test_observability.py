"""What a merge shows in the Prefect UI, read back from the API server.

The flow runs on the real engine against the session's test server. The tests
read the artifacts, task run names and events through the Prefect client, as
the UI reads them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterType,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from pydantic import SecretStr

from flows.merge_documents import merge_documents
from pdfco_tasks.credentials import PdfcoCredentials
from tests.factories import make_pdf

KEY = "ui-key"
EVENT_SECONDS = 30.0


def run_merge(
    tmp_path: Path, start_sandbox: Callable[..., Any], **sandbox_options: Any
) -> tuple[UUID, dict[str, Any]]:
    sandbox = start_sandbox(api_keys=(KEY,), **sandbox_options)
    credentials = PdfcoCredentials(api_key=SecretStr(KEY), base_url=sandbox.base_url)
    first = make_pdf(tmp_path, "first.pdf", 2)
    second = make_pdf(tmp_path, "second.pdf", 1)

    state = merge_documents(
        [str(first), str(second)],
        str(tmp_path / "Quarterly Report.pdf"),
        credentials=credentials,
        return_state=True,
    )

    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return flow_run_id, state.result()


def artifacts_of(flow_run_id: UUID) -> dict[str, Any]:
    """Return the run's artifacts by type; keyed ones also by key."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
            )
        )
    found: dict[str, Any] = {}
    for artifact in artifacts:
        found.setdefault(str(artifact.type), artifact)
        if artifact.key:
            found[artifact.key] = artifact
    return found


def job_events(event: str, job_id: str) -> list[Any]:
    event_filter = EventFilter(
        event=EventNameFilter(name=[event]),
        resource=EventResourceFilter(id=[f"pdfco.job.{job_id}"]),
    )
    deadline = time.monotonic() + EVENT_SECONDS
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            # The server rejects pages above 50 events, and the client's default
            # is 100 (Prefect 3.9.1).
            page = client.read_events(filter=event_filter, limit=50)
            if page.events:
                return list(page.events)
            time.sleep(0.5)
    return []


def test_summary_and_page_table_keyed(
    tmp_path: Path, pdfco_sandbox_factory: Callable[..., Any], state_dir: Path
) -> None:
    flow_run_id, result = run_merge(tmp_path, pdfco_sandbox_factory)

    artifacts = artifacts_of(flow_run_id)

    summary = artifacts["pdfco-quarterly-report-summary"]
    assert summary.type == "markdown"
    assert "Merged 2 inputs into 3 pages" in summary.data
    assert f"`{result['job_id']}`" in summary.data
    table = artifacts["pdfco-quarterly-report-pages"]
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert [row["input"] for row in rows] == [
        str(tmp_path / "first.pdf"),
        str(tmp_path / "second.pdf"),
    ]
    assert [(row["first_page"], row["last_page"]) for row in rows] == [(1, 2), (3, 3)]


def test_progress_artifact_reaches_done(
    tmp_path: Path, pdfco_sandbox_factory: Callable[..., Any], state_dir: Path
) -> None:
    flow_run_id, result = run_merge(tmp_path, pdfco_sandbox_factory, job_latency=1.0)

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["progress"]))
        )
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    wait_runs = {run.id for run in task_runs if run.name.startswith("wait-")}
    progress = [a for a in artifacts if a.task_run_id in wait_runs]
    assert len(progress) == 1
    assert progress[0].data == 100.0
    assert result["job_id"] in str(progress[0].description)
    assert "success" in str(progress[0].description)


def test_run_names_are_readable(
    tmp_path: Path, pdfco_sandbox_factory: Callable[..., Any], state_dir: Path
) -> None:
    flow_run_id, result = run_merge(tmp_path, pdfco_sandbox_factory)

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    names = {run.name for run in task_runs}

    assert flow_run.name == "merge-2-into-Quarterly Report.pdf"
    assert {"upload-first.pdf", "upload-second.pdf"} <= names
    assert "submit-Quarterly Report.pdf" in names
    assert f"wait-{result['job_id']}" in names
    assert f"download-{result['job_id']}" in names
    assert KEY not in json.dumps(flow_run.parameters, default=str)


def test_merge_events_carry_job_id(
    tmp_path: Path, pdfco_sandbox_factory: Callable[..., Any], state_dir: Path
) -> None:
    flow_run_id, result = run_merge(tmp_path, pdfco_sandbox_factory)

    submitted = job_events("pdfco.merge.submitted", result["job_id"])
    completed = job_events("pdfco.merge.completed", result["job_id"])

    assert len(submitted) == 1
    assert submitted[0].payload["inputs"] == 2
    assert len(completed) == 1
    assert completed[0].payload["pages"] == 3
    assert completed[0].payload["credits_used"] == result["credits_used"]
    assert completed[0].resource.name == "Quarterly Report.pdf"
    related = {resource.id for resource in completed[0].related}
    assert f"prefect.flow-run.{flow_run_id}" in related


def test_failed_job_emits_failed_event(
    tmp_path: Path, pdfco_sandbox_factory: Callable[..., Any], state_dir: Path
) -> None:
    sandbox = pdfco_sandbox_factory(api_keys=(KEY,), faults="job-failed:1.0")
    credentials = PdfcoCredentials(api_key=SecretStr(KEY), base_url=sandbox.base_url)
    source = make_pdf(tmp_path, "only.pdf", 1)

    state = merge_documents(
        [str(source)],
        str(tmp_path / "failing.pdf"),
        credentials=credentials,
        return_state=True,
    )

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    job_id = getattr(error, "job_id", None)
    assert job_id, f"the error names no job: {error!r}"
    failed = job_events("pdfco.merge.failed", job_id)
    assert len(failed) == 1
    assert failed[0].payload["error"] == "JobFailedError"
    assert failed[0].resource.name == "failing.pdf"
    assert not (tmp_path / "failing.pdf").exists()
