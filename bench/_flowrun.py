"""Run our flows in the benchmark process and read what each run cost.

Prefect reads its settings when it is first imported, so `use_prefect_server`
must run before anything imports `flows` or `prefect`.
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from _common import Row, Sandbox, child_env

T = TypeVar("T")

__all__ = [
    "Comparison",
    "RunCost",
    "compare_merges",
    "cost_rows",
    "fresh_state_dir",
    "measure_cost",
    "prefect_unavailable_count",
    "run_library_merge",
    "run_merge_flow",
    "use_prefect_server",
]


def use_prefect_server(api_url: str, workdir: Path, sandbox: Sandbox) -> None:
    """Point this process at a running Prefect server and at the sandbox.

    The process gets its own PREFECT_HOME under `workdir`, so no profile or
    database of the user is read or written.
    """
    home = workdir / "prefect-client-home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(child_env(sandbox.client_env()))
    os.environ["PREFECT_API_URL"] = api_url
    os.environ["PREFECT_HOME"] = str(home)
    http_log = logging.getLogger("httpx")
    http_log.addHandler(_UNAVAILABLE)
    http_log.setLevel(logging.INFO)
    http_log.propagate = False


class _UnavailableCounter(logging.Handler):
    """Counts HTTP 503 responses that httpx logs; Prefect's client uses httpx."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if " 503 " in record.getMessage():
            self.count += 1


_UNAVAILABLE = _UnavailableCounter()


def prefect_unavailable_count() -> int:
    """Return how many Prefect API calls of this process got HTTP 503.

    Prefect's client retries them after a back-off of about 2 seconds, so each
    one can add that much to a run.
    """
    return _UNAVAILABLE.count


def fresh_state_dir(root: Path) -> Path:
    """Give the next merge an empty job store, so no upload or job is reused.

    A reused upload or job would skip work that the baseline always does.
    """
    root.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="state-", dir=root))
    os.environ["PDFCO_TASKS_HOME"] = str(state)
    return state


def run_merge_flow(
    sources: Sequence[Path], output: Path, state_root: Path
) -> tuple[float, dict[str, Any]]:
    """Run `merge_documents` once with the defaults a user gets.

    Returns:
        The wall time in seconds and the flow's result.
    """
    from flows.merge_documents import merge_documents

    fresh_state_dir(state_root)
    output.unlink(missing_ok=True)
    started = time.perf_counter()
    result = merge_documents([str(path) for path in sources], str(output))
    return time.perf_counter() - started, result


@dataclass(frozen=True)
class RunCost:
    """What one client run cost on the sandbox.

    Attributes:
        credits: Credits charged (refunds not subtracted; none happen here).
        requests: API and file requests by endpoint label.
        job_checks: `/v1/job/check` requests.
    """

    credits: int
    requests: dict[str, int]
    job_checks: int

    @property
    def total_requests(self) -> int:
        """All requests of the run."""
        return sum(self.requests.values())


def measure_cost(sandbox: Sandbox, run: Callable[[], T]) -> tuple[T, RunCost]:
    """Call `run` between a reset and a read of the sandbox counters.

    Returns:
        What `run` returned and the cost it caused.
    """
    sandbox.reset_counters()
    value = run()
    counters = sandbox.counters()
    requests_by_endpoint = {
        endpoint: sum(statuses.values())
        for endpoint, statuses in counters["requests"].items()
    }
    cost = RunCost(
        credits=int(counters["credits_charged"]) - int(counters["credits_refunded"]),
        requests=requests_by_endpoint,
        job_checks=requests_by_endpoint.get("GET /v1/job/check", 0)
        + requests_by_endpoint.get("POST /v1/job/check", 0),
    )
    return value, cost


def run_library_merge(
    sources: Sequence[Path], output: Path, state_root: Path
) -> tuple[float, int]:
    """Merge with the library alone: the flow's steps without Prefect.

    Inspection, concurrent uploads, one merge2 job, polling, download and
    validation run as in `merge_documents`, on `PdfcoClient` directly.

    Returns:
        The wall time in seconds and the merged page count.
    """
    from concurrent.futures import ThreadPoolExecutor

    from pdfco_tasks.client import PdfcoClient
    from pdfco_tasks.inspection import inspect_sources
    from pdfco_tasks.settings import PdfcoSettings
    from pdfco_tasks.validation import validate_merged_pdf

    fresh_state_dir(state_root)
    output.unlink(missing_ok=True)
    started = time.perf_counter()
    specs = inspect_sources([str(path) for path in sources])
    with PdfcoClient(PdfcoSettings.from_env()) as client:
        with ThreadPoolExecutor(max_workers=len(specs)) as pool:
            uploads = list(
                pool.map(
                    lambda spec: client.upload_file(
                        Path(spec.source), sha256=spec.sha256
                    ),
                    specs,
                )
            )
        job = client.submit_merge([u.url for u in uploads], name=output.name)
        status = client.wait_for_job(job)
        staging = output.with_name(f".{output.name}.download")
        client.download(status.url or job.result_url, staging, job_id=job.job_id)
    report = validate_merged_pdf(staging, specs, reported_page_count=status.page_count)
    os.replace(staging, output)
    return time.perf_counter() - started, report.page_count


@dataclass
class Comparison:
    """Alternating runs of our flow, our library path and the baseline.

    Attributes:
        flow: Wall times of `merge_documents`.
        library: Wall times of the same steps without Prefect.
        baseline: Wall times of the baseline script.
        flow_costs: Sandbox cost of each flow run.
        baseline_costs: Sandbox cost of each baseline run.
        steps: The flow's own step durations of each run.
        first: Wall time of the warm-up flow run, the first of the process.
        unavailable: Prefect API calls answered with HTTP 503 during the
            counted runs.
    """

    flow: list[float]
    library: list[float]
    baseline: list[float]
    flow_costs: list[RunCost]
    baseline_costs: list[RunCost]
    steps: list[dict[str, float]]
    first: float = 0.0
    unavailable: int = 0


def compare_merges(
    sandbox: Sandbox,
    baseline: Path,
    sources: Sequence[Path],
    workdir: Path,
    repeat: int,
    label: str,
) -> Comparison:
    """Merge `sources` `repeat` times with each client, alternating them.

    One flow run and one library run come first and are not counted, so
    imports and first-use set-up stay out of the medians. Every run starts
    from an empty job store and a missing output.
    """
    from _common import run_baseline

    output = workdir / "merged.pdf"
    state_root = workdir / "state"
    result = Comparison([], [], [], [], [], [])
    result.first = run_merge_flow(sources, output, state_root)[0]
    run_library_merge(sources, output, state_root)
    print(f"{label} first flow run of this process: {result.first:.2f} s")
    unavailable_before = prefect_unavailable_count()
    for index in range(repeat):
        (seconds, outcome), cost = measure_cost(
            sandbox, lambda: run_merge_flow(sources, output, state_root)
        )
        result.flow.append(seconds)
        result.flow_costs.append(cost)
        result.steps.append(dict(outcome["durations"]))

        seconds, cost = measure_cost(
            sandbox, lambda: run_baseline(baseline, sandbox, sources, output)
        )
        result.baseline.append(seconds)
        result.baseline_costs.append(cost)

        result.library.append(run_library_merge(sources, output, state_root)[0])
        print(
            f"{label} run {index + 1}: flow {result.flow[-1]:.2f} s "
            f"{result.steps[-1]}, library {result.library[-1]:.2f} s, "
            f"baseline {result.baseline[-1]:.2f} s",
            flush=True,
        )
    result.unavailable = prefect_unavailable_count() - unavailable_before
    return result


def cost_rows(bench: str, scenario: str, runs: Comparison) -> list[Row]:
    """Rows for the credits, job checks and requests of one merge."""
    from _common import speedup_row

    def typical(costs: list[RunCost], field: str) -> float:
        return float(statistics.median(getattr(cost, field) for cost in costs))

    return [
        speedup_row(
            bench,
            f"{scenario}: credits per merge",
            typical(runs.flow_costs, "credits"),
            typical(runs.baseline_costs, "credits"),
            unit="credits",
        ),
        speedup_row(
            bench,
            f"{scenario}: job checks per merge",
            typical(runs.flow_costs, "job_checks"),
            typical(runs.baseline_costs, "job_checks"),
            unit="checks",
        ),
        speedup_row(
            bench,
            f"{scenario}: HTTP requests per merge",
            typical(runs.flow_costs, "total_requests"),
            typical(runs.baseline_costs, "total_requests"),
            unit="requests",
        ),
    ]
