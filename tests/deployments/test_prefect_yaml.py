"""Deploy prefect.yaml to a real Prefect server and run it through a process worker.

One module-scoped stack backs every test: a `prefect server start` on a free
loopback port with its own PREFECT_HOME, the `pdfco-sandbox` command, the
`pdfco-process` work pool, a `pdfco` credentials block, `prefect deploy --all`
run from the repository root, and a `prefect worker start`. Every process is
started in its own session and killed with its children at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.settings import PREFECT_API_URL, temporary_settings
from pydantic import SecretStr
from pypdf import PdfReader

from pdfco_tasks.credentials import PdfcoCredentials
from tests.factories import make_pdf

pytestmark = pytest.mark.deployment

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
BIN = Path(sys.executable).parent
API_KEY = "deployment-key"
POOL = "pdfco-process"
STARTUP_SECONDS = 90.0
RUN_SECONDS = 240.0
EVENT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment(home: Path, api_url: str) -> dict[str, str]:
    """Return the environment of every child: no inherited Prefect setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_COLORS": "false",
            # The worker polls for runs every second instead of every 10.
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PDFCO_TASKS_HOME": str(home / "pdfco"),
        }
    )
    env.pop("PDFCO_API_KEY", None)
    env.pop("PDFCO_BASE_URL", None)
    return env


@dataclass
class Stack:
    """The running server, sandbox and worker, and what they write to."""

    home: Path
    api_url: str
    env: dict[str, str]
    processes: list[tuple[str, subprocess.Popen[str]]] = field(default_factory=list)
    sandbox_url: str = ""

    def start(self, name: str, args: list[str], log: Path) -> subprocess.Popen[str]:
        stream = log.open("w", encoding="utf-8")
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE if name == "sandbox" else stream,
            stderr=stream,
            text=True,
            start_new_session=True,
        )
        self.processes.append((name, process))
        return process

    def run(
        self, *args: str, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [str(BIN / "prefect"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert completed.returncode == 0, (
            f"prefect {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}"
        )
        return completed

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            _stop_group(process, signal.SIGTERM)
        for _, process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _stop_group(process, signal.SIGKILL)
                process.wait(timeout=15)

    def logs(self) -> str:
        parts = []
        for log in sorted(self.home.glob("*.log")):
            text = log.read_text(encoding="utf-8", errors="replace")
            parts.append(f"===== {log.name} =====\n{text[-6000:]}")
        return "\n".join(parts)


def _stop_group(process: subprocess.Popen[str], signum: int) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def wait_for_health(stack: Stack, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, f"prefect server exited:\n{stack.logs()}"
        try:
            with urllib.request.urlopen(f"{stack.api_url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"prefect server not healthy in time:\n{stack.logs()}")


def read_first_line(process: subprocess.Popen[str], stream: IO[str]) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "pdfco-sandbox exited before printing its URL"
        ready, _, _ = select.select([stream], [], [], 0.5)
        if ready:
            return stream.readline().strip()
    raise AssertionError("pdfco-sandbox printed no base URL in time")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("deployment")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    stack = Stack(home=home, api_url=api_url, env=clean_environment(home, api_url))
    try:
        server = stack.start(
            "server",
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-ui",
                "--analytics-off",
            ],
            home / "server.log",
        )
        sandbox = stack.start(
            "sandbox",
            [
                str(BIN / "pdfco-sandbox"),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--api-key",
                API_KEY,
            ],
            home / "sandbox.log",
        )
        assert sandbox.stdout is not None
        stack.sandbox_url = read_first_line(sandbox, sandbox.stdout)
        wait_for_health(stack, server)

        stack.run("work-pool", "create", POOL, "--type", "process")
        with temporary_settings({PREFECT_API_URL: api_url}):
            PdfcoCredentials(
                api_key=SecretStr(API_KEY), base_url=stack.sandbox_url
            ).save("pdfco", overwrite=True)
        stack.run("--no-prompt", "deploy", "--all")
        stack.start(
            "worker",
            [str(BIN / "prefect"), "worker", "start", "--pool", POOL],
            home / "worker.log",
        )
        yield stack
    finally:
        stack.stop()


@contextmanager
def api_client(stack: Stack) -> Iterator[SyncPrefectClient]:
    """Open a client of the stack's server, whatever server the session uses."""
    with (
        temporary_settings({PREFECT_API_URL: stack.api_url}),
        get_client(sync_client=True) as client,
    ):
        yield client


def run_deployment(stack: Stack, name: str, parameters: dict[str, Any]) -> UUID:
    completed = stack.run("deployment", "run", name, "--params", json.dumps(parameters))
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", completed.stdout)
    assert match, f"no flow run id in:\n{completed.stdout}"
    return UUID(match.group(1))


def wait_for_run(stack: Stack, flow_run_id: UUID) -> Any:
    deadline = time.monotonic() + RUN_SECONDS
    with api_client(stack) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                return run
            time.sleep(1.0)
    raise AssertionError(f"flow run {flow_run_id} did not finish:\n{stack.logs()}")


def read_artifact(stack: Stack, key: str) -> Any:
    with api_client(stack) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert artifacts, f"no artifact with key {key}"
    return artifacts[0]


def read_job_events(stack: Stack, event: str, job_id: str) -> list[Any]:
    """Poll the events API until `event` for `job_id` is stored."""
    event_filter = EventFilter(
        event=EventNameFilter(name=[event]),
        resource=EventResourceFilter(id=[f"pdfco.job.{job_id}"]),
    )
    deadline = time.monotonic() + EVENT_SECONDS
    with api_client(stack) as client:
        while time.monotonic() < deadline:
            # The server rejects a page above 50 events, while the
            # client defaults to 100 (Prefect 3.9.1).
            page = client.read_events(filter=event_filter, limit=50)
            events = page.events
            if events:
                return list(events)
            time.sleep(1.0)
    return []


def job_id_of(summary_markdown: str) -> str:
    match = re.search(r"\*\*Job id:\*\* `([^`]+)`", summary_markdown)
    assert match, f"no job id in the summary:\n{summary_markdown}"
    return match.group(1)


def test_deploy_registers_settings(stack: Stack) -> None:
    with api_client(stack) as client:
        nightly = client.read_deployment_by_name("merge-folder/nightly")
        adhoc = client.read_deployment_by_name("merge-documents/merge-documents")
        batches = client.read_deployment_by_name("merge-batches/merge-batches")

    assert nightly.work_pool_name == POOL
    assert adhoc.work_pool_name == POOL
    assert batches.work_pool_name == POOL
    schedule = nightly.schedules[0].schedule
    assert getattr(schedule, "cron", None) == "30 2 * * *"
    assert getattr(schedule, "timezone", None) == "Europe/Berlin"
    assert nightly.global_concurrency_limit is not None
    assert nightly.global_concurrency_limit.limit == 1
    assert nightly.concurrency_options is not None
    assert nightly.concurrency_options.collision_strategy == "CANCEL_NEW"
    assert nightly.parameters["credentials"] == "pdfco"
    assert adhoc.parameters == {
        "credentials": "pdfco",
        "overwrite": False,
        "bookmarks": True,
        "create_artifacts": True,
    }
    assert nightly.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ]
    assert API_KEY not in json.dumps(nightly.parameters)


def test_merge_documents_deployment_runs(stack: Stack, tmp_path: Path) -> None:
    output = tmp_path / "deployed.pdf"
    sources = [str(SAMPLES / "01-report.pdf"), str(SAMPLES / "04-chart.png")]

    flow_run_id = run_deployment(
        stack,
        "merge-documents/merge-documents",
        {"sources": sources, "output": str(output)},
    )
    run = wait_for_run(stack, flow_run_id)

    assert run.state.is_completed(), f"{run.state!r}\n{stack.logs()}"
    assert run.parameters["credentials"] == "pdfco"
    assert len(PdfReader(output).pages) == 4

    summary = read_artifact(stack, "pdfco-deployed-summary")
    assert summary.flow_run_id == flow_run_id
    assert "Merged 2 inputs into 4 pages" in summary.data
    pages = read_artifact(stack, "pdfco-deployed-pages")
    rows = json.loads(pages.data) if isinstance(pages.data, str) else pages.data
    assert [(row["first_page"], row["last_page"]) for row in rows] == [(1, 3), (4, 4)]

    job_id = job_id_of(summary.data)
    completed = read_job_events(stack, "pdfco.merge.completed", job_id)
    assert len(completed) == 1
    assert completed[0].payload["pages"] == 4
    assert completed[0].resource.name == "deployed.pdf"
    related_runs = [r.id for r in completed[0].related if r.role == "flow-run"]
    assert f"prefect.flow-run.{flow_run_id}" in related_runs
    submitted = read_job_events(stack, "pdfco.merge.submitted", job_id)
    assert len(submitted) == 1


def test_folder_deployment_runs(stack: Stack, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(SAMPLES / "01-report.pdf", inbox / "1-report.pdf")
    make_pdf(inbox, "2-appendix.pdf", 2, size=(210, 300))
    make_pdf(inbox, "10-annex.pdf", 1, size=(310, 300))
    report_width = float(PdfReader(SAMPLES / "01-report.pdf").pages[0].mediabox.width)
    merged = tmp_path / "merged"

    flow_run_id = run_deployment(
        stack,
        "merge-folder/nightly",
        {"input_dir": str(inbox), "output_dir": str(merged)},
    )
    run = wait_for_run(stack, flow_run_id)

    assert run.state.is_completed(), f"{run.state!r}\n{stack.logs()}"
    outputs = sorted(merged.glob("merged-*.pdf"))
    assert len(outputs) == 1
    assert re.fullmatch(r"merged-\d{4}-\d{2}-\d{2}\.pdf", outputs[0].name)
    reader = PdfReader(outputs[0])
    assert len(reader.pages) == 3 + 2 + 1
    widths = [float(page.mediabox.width) for page in reader.pages]
    assert widths == [report_width] * 3 + [210.0] * 2 + [310.0]

    folder = read_artifact(stack, "pdfco-inbox-folder")
    assert folder.flow_run_id == flow_run_id
    assert "10-annex.pdf" in folder.data
    job_id = job_id_of(read_artifact(stack, f"pdfco-{outputs[0].stem}-summary").data)
    assert f"`{job_id}`" in folder.data
    completed = read_job_events(stack, "pdfco.merge.completed", job_id)
    assert len(completed) == 1
    assert completed[0].payload["pages"] == 6
