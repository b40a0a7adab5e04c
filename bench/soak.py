"""Soak: many merges through `merge_documents` against a faulty sandbox.

Every merge runs the real flow on the Prefect engine against an in-process
sandbox that injects transient faults: 429, 500, 503, connection resets,
errors inside HTTP 200 bodies, 408 and 445 on merges, slow responses and cut
short downloads. Each kind gets the same rate, chosen so that an ordinary API
request meets a fault with probability `--fault-rate`. The report counts:

- valid outputs: the merged PDF exists and pypdf reads the expected pages;
- partial files: anything in the output directory besides the finished PDFs;
- duplicate merges: submissions the sandbox accepted beyond one per merge,
  less the resubmissions that follow an expired result link;
- retries by cause, from the WARNING lines of the `pdfco_tasks` logger, and
  the faults the sandbox injected, from its counters.

Each merge gets its own inputs and output name, so no merge resumes another's
job or reuses its uploads. When PREFECT_API_URL is set the flows report to
that server; otherwise a temporary one is started.

Usage:
    python bench/soak.py [--merges 50] [--fault-rate 0.2] [--seed 7]
        [--json PATH]

The exit status is 0 when every merge produced a valid output with no
partial file and no duplicate merge, else 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Prefect reads these settings on first import, so they are set before it.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from pydantic import SecretStr
from pypdf import PdfReader, PdfWriter

API_KEY = "soak-key"
FAULT_KINDS = ("429", "500", "503", "reset", "error200", "408", "445", "slow")
DOWNLOAD_FAULT_KINDS = ("truncate",)
# Fault kinds drawn for every API request. A merge also draws 408 and 445.
REQUEST_FAULT_COUNT = 6
_RETRY_LINE = re.compile(r"failed \((?P<cause>[^)]*)\); retry \d+ of \d+")


@dataclass
class SoakReport:
    """Counts of one soak run.

    Attributes:
        merges: Merges started.
        valid: Outputs that exist and have the expected page count.
        failed: Merges that raised, with their error messages.
        partial_files: Names in the output directory besides finished PDFs.
        merge_submissions: Merge requests the sandbox accepted.
        expired_resubmissions: Result downloads that returned HTTP 403, each
            followed by one legitimate resubmission.
        duplicate_merges: Submissions beyond one per merge and per expired
            result.
        retries: Retries by cause, from the client's WARNING lines.
        failed_job_checks: Job checks that failed after all their retries;
            polling went on after each.
        faults_injected: Faults by kind, from the sandbox counters.
        job_checks: Job check requests the sandbox received.
        credits_charged: Credits the sandbox charged.
        fault_rate_per_kind: Rate configured for each fault kind.
        seconds: Wall time of every merge.
    """

    merges: int
    valid: int = 0
    failed: list[str] = field(default_factory=list)
    partial_files: list[str] = field(default_factory=list)
    merge_submissions: int = 0
    expired_resubmissions: int = 0
    duplicate_merges: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    failed_job_checks: int = 0
    faults_injected: dict[str, int] = field(default_factory=dict)
    job_checks: int = 0
    credits_charged: int = 0
    fault_rate_per_kind: float = 0.0
    seconds: list[float] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every merge was valid, with no partial file or duplicate."""
        return (
            self.valid == self.merges
            and not self.partial_files
            and self.duplicate_merges == 0
        )


class _RetryCounter(logging.Handler):
    """Counts the retry and failed-check WARNING lines of `pdfco_tasks`."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.retries: Counter[str] = Counter()
        self.failed_checks = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        match = _RETRY_LINE.search(message)
        if match:
            self.retries[match.group("cause")] += 1
        elif message.startswith("check of job "):
            self.failed_checks += 1


def per_kind_rate(request_fault_rate: float) -> float:
    """Return the rate per kind that makes an API request fail at the given rate.

    The sandbox draws each configured kind independently, so with `k` kinds
    of rate `r` a request meets a fault with probability `1 - (1 - r) ** k`.
    """
    return 1.0 - float((1.0 - request_fault_rate) ** (1.0 / REQUEST_FAULT_COUNT))


def fault_spec(rate: float) -> str:
    kinds = FAULT_KINDS + DOWNLOAD_FAULT_KINDS
    return ",".join(f"{kind}:{rate:.4f}" for kind in kinds)


def write_pdf(path: Path, pages: int, width: int) -> Path:
    """Write a PDF of blank pages. The width makes its bytes unique."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=width, height=300)
    with path.open("wb") as stream:
        writer.write(stream)
    return path


def make_inputs(directory: Path, index: int) -> tuple[list[str], int]:
    """Write the two inputs of merge `index` and return their paths and pages."""
    first_pages = 1 + index % 3
    second_pages = 1 + (index * 7) % 4
    first = write_pdf(directory / f"in-{index:03d}-a.pdf", first_pages, 200 + index)
    second = write_pdf(directory / f"in-{index:03d}-b.pdf", second_pages, 400 + index)
    return [str(first), str(second)], first_pages + second_pages


def count_pages(path: Path) -> int | None:
    try:
        return len(PdfReader(path).pages)
    except (OSError, ValueError) as exc:
        logging.getLogger("soak").error("cannot read %s: %s", path, exc)
        return None


@contextmanager
def prefect_server() -> Iterator[None]:
    """Use the server of PREFECT_API_URL, or run a temporary one."""
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def run_soak(
    merges: int, request_fault_rate: float, seed: int, slow_seconds: float
) -> SoakReport:
    """Run `merges` merges against a faulty sandbox and count the outcome."""
    from flows.merge_documents import merge_documents
    from pdfco_tasks.credentials import PdfcoCredentials
    from pdfco_tasks.sandbox import Sandbox

    rate = per_kind_rate(request_fault_rate)
    report = SoakReport(merges=merges, fault_rate_per_kind=round(rate, 4))
    counter = _RetryCounter()
    library_logger = logging.getLogger("pdfco_tasks")
    library_logger.addHandler(counter)

    with (
        tempfile.TemporaryDirectory(prefix="pdfco-soak-") as scratch,
        Sandbox(
            api_keys=(API_KEY,),
            faults=fault_spec(rate),
            faults_seed=seed,
            slow_seconds=slow_seconds,
        ) as sandbox,
        prefect_server(),
    ):
        root = Path(scratch)
        inputs_dir = root / "inputs"
        output_dir = root / "out"
        inputs_dir.mkdir()
        os.environ["PDFCO_TASKS_HOME"] = str(root / "state")
        credentials = PdfcoCredentials(
            api_key=SecretStr(API_KEY),
            base_url=sandbox.base_url,
            retry_base_delay=0.05,
            read_timeout=10.0,
        )

        expected_names: set[str] = set()
        for index in range(1, merges + 1):
            sources, pages = make_inputs(inputs_dir, index)
            output = output_dir / f"merged-{index:03d}.pdf"
            expected_names.add(output.name)
            started = time.monotonic()
            try:
                merge_documents(sources, str(output), credentials=credentials)
            except Exception as exc:  # every failure is reported, none stops the soak
                report.failed.append(f"merge {index}: {type(exc).__name__}: {exc}")
            report.seconds.append(round(time.monotonic() - started, 3))
            if output.exists() and count_pages(output) == pages:
                report.valid += 1

        report.partial_files = sorted(
            path.name
            for path in output_dir.iterdir()
            if path.name not in expected_names
        )
        counters = sandbox.counters()

    library_logger.removeHandler(counter)
    fill_from_counters(report, counters)
    report.retries = dict(sorted(counter.retries.items()))
    report.failed_job_checks = counter.failed_checks
    return report


def fill_from_counters(report: SoakReport, counters: dict[str, Any]) -> None:
    """Copy the sandbox's view of the run into the report."""
    report.merge_submissions = int(counters["merge_submissions_total"])
    downloads = counters["requests"].get("GET file", {})
    report.expired_resubmissions = int(downloads.get("403", 0))
    report.duplicate_merges = (
        report.merge_submissions - report.merges - report.expired_resubmissions
    )
    report.faults_injected = dict(sorted(counters["faults"].items()))
    checks = counters["requests"].get("GET /v1/job/check", {})
    report.job_checks = sum(checks.values())
    report.credits_charged = int(counters["credits_charged"])


def format_report(report: SoakReport, request_fault_rate: float, seed: int) -> str:
    seconds = report.seconds or [0.0]
    lines = [
        f"soak: {report.merges} merges, seed {seed}",
        f"fault rate:             {report.fault_rate_per_kind:.4f} per kind "
        f"({request_fault_rate:.0%} per API request)",
        f"valid outputs:          {report.valid} / {report.merges}",
        f"failed merges:          {len(report.failed)}",
        f"partial files:          {len(report.partial_files)}",
        f"merge submissions:      {report.merge_submissions}",
        f"resubmitted on expiry:  {report.expired_resubmissions}",
        f"duplicate merges:       {report.duplicate_merges}",
        f"retries:                {sum(report.retries.values())} "
        f"{json.dumps(report.retries)}",
        f"failed job checks:      {report.failed_job_checks}",
        f"faults injected:        {sum(report.faults_injected.values())} "
        f"{json.dumps(report.faults_injected)}",
        f"job checks:             {report.job_checks}",
        f"credits charged:        {report.credits_charged}",
        f"seconds per merge:      median {statistics.median(seconds):.2f}, "
        f"max {max(seconds):.2f}, total {sum(seconds):.1f}",
    ]
    lines.extend(f"  {failure}" for failure in report.failed)
    lines.extend(f"  partial: {name}" for name in report.partial_files)
    lines.append("result:                 " + ("PASS" if report.passed else "FAIL"))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soak.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--merges", type=int, default=50, help="merges to run (default: 50)"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.2,
        help="probability that an API request meets a fault (default: 0.2)",
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="seed of the fault generator (default: 7)"
    )
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=0.3,
        help="delay of the slow fault in seconds (default: 0.3)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the report to this file"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.merges < 1:
        raise SystemExit(f"--merges must be at least 1, not {args.merges}")
    if not 0.0 <= args.fault_rate < 1.0:
        raise SystemExit(f"--fault-rate must be in [0, 1), not {args.fault_rate}")

    report = run_soak(args.merges, args.fault_rate, args.seed, args.slow_seconds)
    print(format_report(report, args.fault_rate, args.seed), flush=True)
    if args.json is not None:
        document = {**asdict(report), "passed": report.passed}
        args.json.write_text(json.dumps(document, indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
