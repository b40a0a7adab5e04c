"""No run of `merge_documents` reveals the API key or a presigned URL signature.

The search covers everything a run leaves behind. Locally that is the log
records at DEBUG of every logger, stdout and stderr, the result and the
exceptions of failing runs. On the Prefect API it is the flow and task runs
with their names, parameters and state messages, the logs, the artifacts and
the events. The job store file is checked as well. The sandbox
signs its file URLs with HMAC; the signatures it issued during the test are
recomputed from the object ids and signing times, and checked against the
ones found in the job store, so the search looks for the real values.
"""

from __future__ import annotations

import ast
import http.client
import json
import logging
import re
import stat
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
from prefect import State
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.events.filters import EventFilter, EventOccurredFilter
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from pydantic import SecretStr

from flows.merge_documents import merge_documents
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import InsufficientCreditsError, JobFailedError
from pdfco_tasks.sandbox import Sandbox
from tests.factories import make_pdf

API_KEY = "sk-SECRET-4242"
PRESIGNED_PUT_LIFETIME = 900
UPLOAD_GET_LIFETIME = 3600
RESULT_LIFETIME = 3600
PDF_CONTENT_TYPE = "application/pdf"
LOGGERS = ("", "prefect", "urllib3", "pdfco_tasks", "httpx", "httpcore", "uvicorn")
# Two presigned upload URLs cost 14 credits, so 15 leaves one. merge2 needs
# two for the first page, so the sandbox rejects the merge with HTTP 402.
CREDITS_FOR_402 = 15
EVENT_WAIT_SECONDS = 30.0

SandboxFactory = Callable[..., Sandbox]


@dataclass
class Runs:
    """What the runs of one test produced, for the search."""

    states: list[State[Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    results_of_jobs: dict[str, str] = field(default_factory=dict)
    sandboxes: list[Sandbox] = field(default_factory=list)

    @property
    def flow_run_ids(self) -> list[UUID]:
        ids = [state.state_details.flow_run_id for state in self.states]
        return [run_id for run_id in ids if run_id is not None]


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    directory = tmp_path / "inputs"
    directory.mkdir()
    first = make_pdf(directory, "first.pdf", 2)
    second = make_pdf(directory, "second.pdf", 1)
    return [str(first), str(second)]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def credentials_for(sandbox: Sandbox) -> PdfcoCredentials:
    return PdfcoCredentials(
        api_key=SecretStr(API_KEY), base_url=sandbox.base_url, retry_base_delay=0.01
    )


def run_flow(
    runs: Runs, sandbox: Sandbox, sources: list[str], output: Path
) -> BaseException | None:
    """Run the flow, keeping its state and its result or exception."""
    runs.sandboxes.append(sandbox)
    state = merge_documents(
        sources, str(output), credentials=credentials_for(sandbox), return_state=True
    )
    runs.states.append(state)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, BaseException):
        runs.errors.append(outcome)
        job_id = getattr(outcome, "job_id", None)
        if job_id:
            runs.results_of_jobs[str(job_id)] = output.name
        return outcome
    runs.results.append(outcome)
    runs.results_of_jobs[outcome["job_id"]] = output.name
    return None


class TestSecrets:
    def test_runs_reveal_no_key_or_signature(
        self,
        pdfco_sandbox_factory: SandboxFactory,
        inputs: list[str],
        tmp_path: Path,
        state_dir: Path,
        debug_logs: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        started = datetime.now(timezone.utc)
        runs = Runs()
        sandbox = pdfco_sandbox_factory(api_keys=(API_KEY,))
        poor = pdfco_sandbox_factory(api_keys=(API_KEY,), credits=CREDITS_FOR_402)
        signed_from = sandbox.clock.now()

        # Each run writes another file name, so none resumes another's job.
        assert run_flow(runs, sandbox, inputs, tmp_path / "merged.pdf") is None
        no_credits = run_flow(runs, poor, inputs, tmp_path / "no-credits.pdf")
        sandbox.set_faults("job-failed:1.0")
        failed = run_flow(runs, sandbox, inputs, tmp_path / "job-failed.pdf")
        sandbox.set_faults("")

        assert isinstance(no_credits, InsufficientCreditsError)
        assert "too few credits" in str(no_credits)
        assert isinstance(failed, JobFailedError)
        assert "ended failed" in str(failed)
        store = state_dir / "jobs.json"
        store_text = store.read_text()
        signatures = issued_signatures(runs, store_text, signed_from)
        output = collected_output(runs, debug_logs, capfd, started)

        assert output.count("Submitted PDF.co job") >= 2
        assert len(runs.results_of_jobs) == 2
        assert all(job_id in output for job_id in runs.results_of_jobs)
        assert API_KEY not in output
        assert f"x-api-key: {API_KEY}" not in output
        assert [sig for sig in signatures if sig in output] == []
        assert "X-Amz-Signature" not in output
        assert API_KEY not in store_text
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        assert signed_fields(json.loads(store_text)) <= {"url", "result_url"}

    def test_file_requests_never_carry_key(
        self,
        pdfco_sandbox_factory: SandboxFactory,
        inputs: list[str],
        tmp_path: Path,
        state_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        sandbox = pdfco_sandbox_factory(api_keys=(API_KEY,))
        # At debuglevel 1 http.client prints every request head it sends. The
        # sandbox does not record request headers, so this output is the wire
        # log.
        monkeypatch.setattr(http.client.HTTPConnection, "debuglevel", 1)

        merge_documents(
            inputs,
            str(tmp_path / "out" / "merged.pdf"),
            credentials=credentials_for(sandbox),
        )

        monkeypatch.setattr(http.client.HTTPConnection, "debuglevel", 0)
        heads = request_heads(capsys.readouterr().out, sandbox.port)
        api = [head for head in heads if head.path.startswith("/v1/")]
        files = [head for head in heads if not head.path.startswith("/v1/")]
        assert sorted(head.method for head in files) == ["GET", "PUT", "PUT"]
        assert all(head.headers.get("x-api-key") == API_KEY for head in api)
        assert len(api) >= 4
        assert [head for head in files if "x-api-key" in head.headers] == []
        assert [head for head in heads if "x-api-key" in head.query] == []


def issued_signatures(runs: Runs, store_text: str, signed_from: float) -> set[str]:
    """Recompute every signature the sandboxes issued for this test's files.

    Upload URLs in the job store give each upload's object id, name and
    signing time; the presigned PUT URL was signed at the same time. Result
    URLs were signed when their job was submitted, so every second of the
    test is tried for them.
    """
    store = json.loads(store_text)
    stored = set(re.findall(r"X-Amz-Signature=([0-9a-f]{64})", store_text))
    assert stored, "the job store holds no signed URL to check the search with"

    signatures: set[str] = set()
    for entry in store["uploads"].values():
        path, query = split_signed(entry["url"])
        for sandbox in runs.sandboxes:
            signatures.add(sign(sandbox, "GET", path, query, UPLOAD_GET_LIFETIME))
            signatures.add(
                sign(
                    sandbox,
                    "PUT",
                    path,
                    query,
                    PRESIGNED_PUT_LIFETIME,
                    PDF_CONTENT_TYPE,
                )
            )

    until = max(sandbox.clock.now() for sandbox in runs.sandboxes)
    seconds = range(int(signed_from) - 1, int(until) + 2)
    for job_id, name in runs.results_of_jobs.items():
        path = f"/{job_id}/{name}"
        for sandbox in runs.sandboxes:
            for second in seconds:
                signed = sandbox.core.signer.query("GET", path, second, RESULT_LIFETIME)
                signatures.add(parse_qs(signed)["X-Amz-Signature"][0])

    assert stored <= signatures, "recomputed signatures miss some stored ones"
    return signatures


def split_signed(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query)


def sign(
    sandbox: Sandbox,
    method: str,
    path: str,
    query: dict[str, list[str]],
    lifetime: int,
    content_type: str | None = None,
) -> str:
    issued = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    seconds = issued.replace(tzinfo=timezone.utc).timestamp()
    signed = sandbox.core.signer.query(method, path, seconds, lifetime, content_type)
    return parse_qs(signed)["X-Amz-Signature"][0]


def signed_fields(node: Any, key: str = "") -> set[str]:
    """Return the names of the JSON fields whose value contains a signed URL."""
    if isinstance(node, dict):
        found: set[str] = set()
        for name, value in node.items():
            found |= signed_fields(value, name)
        return found
    if isinstance(node, list):
        return {name for item in node for name in signed_fields(item, key)}
    return {key} if isinstance(node, str) and "X-Amz-Signature" in node else set()


def collected_output(
    runs: Runs,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    started: datetime,
) -> str:
    """Join everything the runs showed or stored into one text to search."""
    captured = capfd.readouterr()
    parts = [captured.out, captured.err, caplog.text]
    parts.extend(record.getMessage() for record in caplog.records)
    parts.extend(json.dumps(result) for result in runs.results)
    parts.extend(describe_exception(error) for error in runs.errors)
    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        parts.extend(api_records(client, runs.flow_run_ids))
        parts.extend(event.model_dump_json() for event in read_events(client, started))
    return "\n".join(parts)


def describe_exception(error: BaseException) -> str:
    rendered = "".join(traceback.format_exception(error))
    return "\n".join([str(error), repr(error), repr(error.args), rendered])


def api_records(client: SyncPrefectClient, run_ids: Sequence[UUID]) -> list[str]:
    """Return runs, task runs, logs and artifacts of the flow runs as JSON."""
    flow_runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(run_ids)))
    )
    assert len(flow_runs) == len(run_ids)
    task_runs = client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(run_ids)))
    )
    logs = client.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=list(run_ids)))
    )
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=list(run_ids))
        )
    )
    assert all(run.name.startswith("merge-2-into-") for run in flow_runs)
    masked = {run.parameters["credentials"]["api_key"] for run in flow_runs}
    assert masked == {"**********"}
    assert any(run.name.startswith("upload-") for run in task_runs)
    assert logs
    assert artifacts
    records: list[Any] = [*flow_runs, *task_runs, *logs, *artifacts]
    return [record.model_dump_json() for record in records]


def read_events(client: SyncPrefectClient, started: datetime) -> list[Any]:
    """Read every event since `started`, waiting for the merge events to land."""
    deadline = datetime.now(timezone.utc) + timedelta(seconds=EVENT_WAIT_SECONDS)
    expected = {"pdfco.merge.submitted", "pdfco.merge.completed", "pdfco.merge.failed"}
    while True:
        events = all_events(client, started)
        names = {event.event for event in events}
        if expected <= names or datetime.now(timezone.utc) > deadline:
            break
        time.sleep(0.2)
    assert expected <= names
    return events


def all_events(client: SyncPrefectClient, started: datetime) -> list[Any]:
    until = datetime.now(timezone.utc) + timedelta(minutes=1)
    window = EventOccurredFilter.model_validate(
        {"since": started - timedelta(seconds=5), "until": until}
    )
    page = client.read_events(EventFilter(occurred=window), limit=50)
    events = list(page.events)
    while page.next_page is not None:
        page = client.read_events_page(str(page.next_page))
        events.extend(page.events)
    return events


@dataclass(frozen=True)
class RequestHead:
    """Request line and headers of one request as http.client sent them."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


def request_heads(wire_log: str, port: int) -> list[RequestHead]:
    """Parse the `send: b'...'` lines of http.client for requests to `port`."""
    heads = []
    for line in wire_log.splitlines():
        if not line.startswith("send: b'") or not re.match(r"send: b'[A-Z]+ ", line):
            continue
        raw: bytes = ast.literal_eval(line.removeprefix("send: "))
        head, _, _ = raw.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = dict(_header(item) for item in header_lines)
        if headers.get("host") != f"127.0.0.1:{port}":
            continue
        path, _, query = target.partition("?")
        heads.append(RequestHead(method, path, query, headers))
    return heads


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()
