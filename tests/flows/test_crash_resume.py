"""A flow process killed while it polls is resumed by the next run, not resubmitted.

The sandbox runs as its own process (`pdfco-sandbox --job-latency 30`), so its
jobs stay `working` for 30 s of sandbox time. The first flow runs in a child
process that reports to the session's Prefect server and is killed with
SIGKILL once the sandbox has received its merge and its first job checks. Moving
the sandbox clock forward then finishes the job without waiting, and the
second run in this process must pick up the same job from the job store.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from prefect.settings import PREFECT_API_URL
from pydantic import SecretStr
from pypdf import PdfReader

from flows.merge_documents import merge_documents
from pdfco_tasks.credentials import PdfcoCredentials
from tests.factories import make_pdf

API_KEY = "crash-key"
JOB_LATENCY_SECONDS = 30.0
STARTUP_TIMEOUT_SECONDS = 30.0
SUBMISSION_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 15.0
REPO_ROOT = Path(__file__).resolve().parents[2]
JOB_FINISHED = re.compile(r"job (\S+) finished: (\w+)")

FLOW_SCRIPT = """
import json
import sys

from pydantic import SecretStr

from flows.merge_documents import merge_documents
from pdfco_tasks.credentials import PdfcoCredentials

base_url, api_key, output, *sources = sys.argv[1:]
credentials = PdfcoCredentials(api_key=SecretStr(api_key), base_url=base_url)
print(json.dumps(merge_documents(sources, output, credentials=credentials)))
"""


@dataclass
class CliSandbox:
    """A `pdfco-sandbox` process and where it logs."""

    process: subprocess.Popen[str]
    base_url: str
    log: Path

    @property
    def origin(self) -> str:
        return self.base_url.removesuffix("/v1")

    def counters(self) -> dict[str, Any]:
        response = requests.get(f"{self.origin}/__sandbox/counters", timeout=5)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def advance_clock(self, seconds: float) -> None:
        response = requests.post(
            f"{self.origin}/__sandbox/clock", json={"advance": seconds}, timeout=5
        )
        response.raise_for_status()

    def finished_jobs(self) -> list[tuple[str, str]]:
        """Return `(job id, state)` of every job the sandbox logged as finished."""
        return JOB_FINISHED.findall(self.log.read_text())


@pytest.fixture
def cli_sandbox(tmp_path: Path) -> Iterator[CliSandbox]:
    log = tmp_path / "sandbox.log"
    command = [
        sys.executable,
        "-m",
        "pdfco_tasks.sandbox.cli",
        "--api-key",
        API_KEY,
        "--job-latency",
        str(JOB_LATENCY_SECONDS),
    ]
    with log.open("w") as log_file:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log_file, text=True
        )
    try:
        base_url = read_first_line(process, STARTUP_TIMEOUT_SECONDS)
        yield CliSandbox(process, base_url, log)
    finally:
        stop(process)


def read_first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """Return the first stdout line of `process`, failing after `timeout` s."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"pdfco-sandbox printed nothing in {timeout:g} s")
    line = process.stdout.readline().strip()
    assert line.startswith("http://127.0.0.1:"), line
    return line


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_SECONDS)


def start_flow_process(
    sandbox: CliSandbox, sources: list[str], output: Path, state_dir: Path
) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(state_dir.parent / "prefect-home"),
        "PDFCO_TASKS_HOME": str(state_dir),
        "PYTHONPATH": str(REPO_ROOT),
    }
    command = [
        sys.executable,
        "-c",
        FLOW_SCRIPT,
        sandbox.base_url,
        API_KEY,
        str(output),
        *sources,
    ]
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def wait_until_polling(sandbox: CliSandbox, process: subprocess.Popen[str]) -> None:
    """Wait until the sandbox has one merge and at least one job check."""
    deadline = time.monotonic() + SUBMISSION_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "the flow process ended before it polled"
        counters = sandbox.counters()
        checks = counters["requests"].get("GET /v1/job/check", {})
        if counters["merge_submissions_total"] and sum(checks.values()):
            return
        time.sleep(0.2)
    raise AssertionError(
        f"no merge and job check within {SUBMISSION_TIMEOUT_SECONDS:g} s"
    )


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    directory = tmp_path / "inputs"
    directory.mkdir()
    first = make_pdf(directory, "first.pdf", 3)
    second = make_pdf(directory, "second.pdf", 2)
    return [str(first), str(second)]


def test_killed_run_resumes_same_job(
    cli_sandbox: CliSandbox, inputs: list[str], tmp_path: Path, state_dir: Path
) -> None:
    output = tmp_path / "out" / "merged.pdf"
    process = start_flow_process(cli_sandbox, inputs, output, state_dir)
    try:
        wait_until_polling(cli_sandbox, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(STOP_TIMEOUT_SECONDS)
    assert process.returncode == -signal.SIGKILL
    assert json.loads((state_dir / "jobs.json").read_text())["jobs"]

    cli_sandbox.advance_clock(JOB_LATENCY_SECONDS + 1)
    credentials = PdfcoCredentials(
        api_key=SecretStr(API_KEY), base_url=cli_sandbox.base_url
    )
    result = merge_documents(inputs, str(output), credentials=credentials)

    counters = cli_sandbox.counters()
    assert result["resumed"] is True
    assert cli_sandbox.finished_jobs() == [(result["job_id"], "success")]
    assert counters["merge_submissions_total"] == 1
    assert counters["presigned_urls"] == 2
    assert counters["puts"] == 2
    assert result["page_count"] == 5
    assert len(PdfReader(output).pages) == 5
    assert sorted(path.name for path in output.parent.iterdir()) == ["merged.pdf"]
