"""P4: job polling: detection latency and job checks for jobs of 1, 10 and 60 s.

For each job length a sandbox starts with `--job-latency`, so every merge
job reports `working` for that long. Our client (`PdfcoClient.wait_for_job`
with the default polling policy, which the flow's wait task uses) and the
baseline (a check every 3 s) each merge two small PDFs. The sandbox's
request log gives the times: the job counts as complete `latency` seconds
after the merge2 response, and as detected at the last `/job/check`, the
one that saw `success`. Each check costs 2 credits. With --quick the 60 s
job is skipped.

Usage:
    python bench/p4_polling.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    API_KEY,
    Children,
    Row,
    Sandbox,
    add_common_options,
    baseline_path,
    bench_dir,
    emit,
    limit_row,
    median,
    run_baseline,
    start_sandbox,
    stop_on_sigterm,
)
from _pdfgen import write_pdf

MERGE_ENDPOINT = "POST /v1/pdf/merge2"
CHECK_ENDPOINTS = ("GET /v1/job/check", "POST /v1/job/check")
FAST_JOB_LIMIT = 0.5
LONG_JOB_CHECK_LIMIT = 20


@dataclass(frozen=True)
class Poll:
    """The wait of one client for one job.

    Attributes:
        detection: Seconds from the job's completion to the check that saw it.
        checks: `/job/check` requests sent.
    """

    detection: float
    checks: int

    def __str__(self) -> str:
        return f"detected {self.detection:.2f} s late with {self.checks} checks"


def main(argv: Sequence[str] | None = None) -> int:
    """Run P4 and print its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    baseline = baseline_path(args.baseline)
    plan = {1.0: 1, 10.0: 1} if args.quick else {1.0: 5, 10.0: 3, 60.0: 1}

    rows: list[Row] = []
    with bench_dir(args.workdir, "p4") as workdir, Children() as children:
        sources = [
            write_pdf(workdir / "first.pdf", 1, label="first"),
            write_pdf(workdir / "second.pdf", 1, label="second"),
        ]
        for latency, repeat in plan.items():
            sandbox = start_sandbox(
                children, workdir, job_latency=latency, name=f"sandbox-{latency:g}s"
            )
            ours, theirs = measure(sandbox, baseline, sources, workdir, latency, repeat)
            children.stop(sandbox.process)
            rows += rows_for(latency, ours, theirs)
    emit(rows, args.json)
    return 0


def measure(
    sandbox: Sandbox,
    baseline: Path,
    sources: list[Path],
    workdir: Path,
    latency: float,
    repeat: int,
) -> tuple[list[Poll], list[Poll]]:
    """Wait for `repeat` jobs with each client, alternating them."""
    ours: list[Poll] = []
    theirs: list[Poll] = []
    output = workdir / "merged.pdf"
    for index in range(repeat):
        ours.append(our_poll(sandbox, sources, output, workdir, latency))
        sandbox.reset_counters()
        run_baseline(baseline, sandbox, sources, output, timeout=latency + 120)
        theirs.append(read_poll(sandbox.counters(), latency))
        print(
            f"P4 {latency:g} s job, run {index + 1}: ours {ours[-1]}, "
            f"baseline {theirs[-1]}",
            flush=True,
        )
    return ours, theirs


def our_poll(
    sandbox: Sandbox, sources: list[Path], output: Path, workdir: Path, latency: float
) -> Poll:
    """Upload, submit and wait with `PdfcoClient`, then read the sandbox log."""
    from pdfco_tasks.client import PdfcoClient
    from pdfco_tasks.settings import PdfcoSettings

    settings = PdfcoSettings(
        api_key=API_KEY, base_url=sandbox.base_url, state_dir=workdir / "state"
    )
    with PdfcoClient(settings) as client:
        uploads = [client.upload_file(path) for path in sources]
        sandbox.reset_counters()
        job = client.submit_merge([upload.url for upload in uploads], name=output.name)
        status = client.wait_for_job(job)
        client.download(status.url or job.result_url, output)
    return read_poll(sandbox.counters(), latency)


def read_poll(counters: dict[str, Any], latency: float) -> Poll:
    """Find the merge and the checks in the request log.

    Raises:
        RuntimeError: When the log has no merge or no check after it.
    """
    log = counters["request_log"]
    merges = [entry["t"] for entry in log if entry["endpoint"] == MERGE_ENDPOINT]
    if not merges:
        raise RuntimeError("the sandbox saw no merge2 request")
    submitted = merges[-1]
    checks = [
        entry["t"]
        for entry in log
        if entry["endpoint"] in CHECK_ENDPOINTS and entry["t"] >= submitted
    ]
    if not checks:
        raise RuntimeError("the sandbox saw no job check after the merge")
    return Poll(detection=max(checks) - (submitted + latency), checks=len(checks))


def rows_for(latency: float, ours: list[Poll], theirs: list[Poll]) -> list[Row]:
    """Rows for one job length: detection latency and checks."""
    job = f"{latency:g} s job"
    runs = f"median of {len(ours)}"
    our_checks = median([poll.checks for poll in ours])
    their_checks = median([poll.checks for poll in theirs])
    credits = f"{2 * our_checks:g} vs {2 * their_checks:g} credits"
    return [
        limit_row(
            "P4",
            f"{job}: detection latency",
            median([poll.detection for poll in ours]),
            "s",
            limit=FAST_JOB_LIMIT if latency == 1.0 else None,
            reference=median([poll.detection for poll in theirs]),
            note=f"{runs}; max {max(poll.detection for poll in ours):.2f} s",
        ),
        limit_row(
            "P4",
            f"{job}: job checks",
            our_checks,
            "checks",
            limit=LONG_JOB_CHECK_LIMIT if latency == 60.0 else None,
            reference=their_checks,
            note=f"{runs}; {credits}",
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
