"""P2: one merge of 20 PDFs of 5 MiB each (100 MiB in, 100 MiB out).

Each input is one page with an image of random pixels, so no step can
compress it. Compares the wall time of one merge: our flow in a warm process
against a running Prefect server, the same steps without Prefect, and the
baseline script in a new process. Runs alternate; each starts from an empty
job store. With --quick the inputs are 1 MiB each.

Usage:
    python bench/p2_twenty_pdfs.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from _common import (
    Children,
    Row,
    add_common_options,
    baseline_path,
    bench_dir,
    emit,
    median,
    prefect_server,
    speedup_row,
    start_sandbox,
    stop_on_sigterm,
)
from _flowrun import Comparison, compare_merges, cost_rows, use_prefect_server
from _pdfgen import write_pdf

TARGET_SPEEDUP = 4.0
INPUTS = 20
MIB = 1024 * 1024


def main(argv: Sequence[str] | None = None) -> int:
    """Run P2 and print its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--repeat", type=int, default=None, help="runs per client")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    baseline = baseline_path(args.baseline)
    repeat = args.repeat or (1 if args.quick else 3)
    size = MIB if args.quick else 5 * MIB

    with bench_dir(args.workdir, "p2") as workdir, Children() as children:
        sandbox = start_sandbox(children, workdir)
        sources = write_inputs(workdir, size)
        with prefect_server(children, workdir) as (api_url, _):
            use_prefect_server(api_url, workdir, sandbox)
            runs = compare_merges(sandbox, baseline, sources, workdir, repeat, "P2")
    emit(rows_for(runs, size), args.json)
    return 0


def write_inputs(workdir: Path, size: int) -> list[Path]:
    """Write the inputs: one page each, an image of `size` random bytes."""
    return [
        write_pdf(
            workdir / f"scan-{index:02d}.pdf",
            1,
            image_bytes=size,
            label=f"scan {index}",
            seed=index,
        )
        for index in range(INPUTS)
    ]


def rows_for(runs: Comparison, size: int) -> list[Row]:
    """Turn the measurements into rows."""
    scenario = f"{INPUTS} PDFs x {size // MIB} MiB"
    baseline = median(runs.baseline)
    steps = {
        name: statistics.median(step[name] for step in runs.steps)
        for name in ("upload", "merge", "download", "validate")
    }
    breakdown = ", ".join(f"{name} {value:.2f} s" for name, value in steps.items())
    return [
        speedup_row(
            "P2",
            f"{scenario}: flow, running Prefect server, warm process",
            median(runs.flow),
            baseline,
            target=TARGET_SPEEDUP,
            note=f"median of {len(runs.flow)}; flow steps: {breakdown}; "
            f"{runs.unavailable} Prefect API 503s",
        ),
        speedup_row(
            "P2",
            f"{scenario}: library alone (no Prefect), warm process",
            median(runs.library),
            baseline,
        ),
        *cost_rows("P2", scenario, runs),
    ]


if __name__ == "__main__":
    sys.exit(main())
