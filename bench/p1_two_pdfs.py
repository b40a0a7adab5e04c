"""P1: one merge of two small PDFs, the scenario of PDF.co's own sample.

Compares the wall time of one merge:

- ours: the `merge_documents` flow called in a process that already imported
  it, against a running Prefect server (how a worker or a notebook runs it);
- ours, cold: `pdfco-merge` in a new process against the same server;
- ours, library: the flow's steps on `PdfcoClient` without Prefect;
- baseline: the vendor-sample script in a new process.

Each merge gets an empty job store, so nothing is reused between runs. Runs of
ours and the baseline alternate, so drift in machine load hits both. Credits
and job checks come from the sandbox counters.

Usage:
    python bench/p1_two_pdfs.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from _common import (
    API_KEY,
    Children,
    Row,
    Sandbox,
    add_common_options,
    baseline_path,
    bench_dir,
    child_env,
    emit,
    median,
    prefect_server,
    run_bounded,
    speedup_row,
    start_sandbox,
    stop_on_sigterm,
)
from _flowrun import (
    Comparison,
    compare_merges,
    cost_rows,
    fresh_state_dir,
    use_prefect_server,
)
from _pdfgen import write_pdf

TARGET_SPEEDUP = 3.0
CLI_TIMEOUT = 300.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run P1 and print its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--repeat", type=int, default=None, help="runs per client")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    baseline = baseline_path(args.baseline)
    repeat = args.repeat or (3 if args.quick else 7)
    cold_repeat = 1 if args.quick else 3

    with bench_dir(args.workdir, "p1") as workdir, Children() as children:
        sandbox = start_sandbox(children, workdir)
        sources = [
            write_pdf(workdir / "first.pdf", 2, label="first"),
            write_pdf(workdir / "second.pdf", 3, label="second"),
        ]
        with prefect_server(children, workdir) as (api_url, _):
            use_prefect_server(api_url, workdir, sandbox)
            rows = measure(sandbox, baseline, sources, workdir, repeat, cold_repeat)
    emit(rows, args.json)
    return 0


def measure(
    sandbox: Sandbox,
    baseline: Path,
    sources: list[Path],
    workdir: Path,
    repeat: int,
    cold_repeat: int,
) -> list[Row]:
    """Measure warm flow runs, library runs, cold CLI runs and baseline runs."""
    output = workdir / "merged.pdf"
    state_root = workdir / "state"
    runs = compare_merges(sandbox, baseline, sources, workdir, repeat, "P1")
    cold = [run_cli(sandbox, sources, output, state_root) for _ in range(cold_repeat)]
    return rows_for(runs, cold)


def run_cli(
    sandbox: Sandbox, sources: list[Path], output: Path, state_root: Path
) -> float:
    """Run `pdfco-merge` once in a new process and return its wall time."""
    state = fresh_state_dir(state_root)
    command = str(Path(sys.executable).with_name("pdfco-merge"))
    args = [command, "--base-url", sandbox.base_url, *map(str, sources)]
    args += ["-o", str(output), "--overwrite"]
    env = child_env({"PDFCO_API_KEY": API_KEY, "PDFCO_TASKS_HOME": str(state)})
    started = time.perf_counter()
    result = run_bounded(args, env, CLI_TIMEOUT)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"pdfco-merge exited with {result.returncode}: {result.stderr}"
        )
    return elapsed


def rows_for(runs: Comparison, cold: list[float]) -> list[Row]:
    """Turn the measurements into rows."""
    baseline = median(runs.baseline)
    flow = runs.flow
    return [
        speedup_row(
            "P1",
            "2 PDFs: flow, running Prefect server, warm process",
            median(flow),
            baseline,
            target=TARGET_SPEEDUP,
            note=f"median of {len(flow)}, min {min(flow):.2f} s, "
            f"max {max(flow):.2f} s; {runs.unavailable} Prefect API 503s",
        ),
        speedup_row(
            "P1",
            "2 PDFs: library alone (no Prefect), warm process",
            median(runs.library),
            baseline,
            note="the flow's steps on PdfcoClient",
        ),
        speedup_row(
            "P1",
            "2 PDFs: first flow run of a process",
            runs.first,
            baseline,
            note="includes Prefect's lazy imports and client set-up",
        ),
        speedup_row(
            "P1",
            "2 PDFs: pdfco-merge CLI, new process, running server",
            median(cold),
            baseline,
            note=f"median of {len(cold)}; includes importing Prefect",
        ),
        *cost_rows("P1", "2 PDFs", runs),
    ]


if __name__ == "__main__":
    sys.exit(main())
