"""P6: 100 document sets of two PDFs each, merged in one go.

Ours: the `merge_batches` flow (one `merge_documents` subflow per set) at
`max_concurrency` 1 and 8, against a running Prefect server, with no
client-side request rate limit because the sandbox has none. The full run
adds concurrency 8 at 10 requests per second (PDF.co's paid-plan limit) and
the library alone on 8 threads. Baseline: the vendor-sample script run once
per set, one after another, as its sample does. Every PDF is distinct, and
every run of ours starts from an empty job store, so no upload is reused.
With --quick there are 20 sets.

Usage:
    python bench/p6_batches.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from _common import (
    Children,
    Row,
    Sandbox,
    add_common_options,
    baseline_path,
    bench_dir,
    emit,
    prefect_server,
    run_baseline,
    speedup_row,
    start_sandbox,
    stop_on_sigterm,
)
from _flowrun import (
    RunCost,
    fresh_state_dir,
    measure_cost,
    prefect_unavailable_count,
    run_library_merge,
    run_merge_flow,
    use_prefect_server,
)
from _pdfgen import write_pdf

TARGET_SPEEDUP = 5.0
PAID_PLAN_RPS = 10.0

Sets = list[list[Path]]

FAILURES: dict[str, list[str]] = {}
"""Errors of the sets that failed, by run name (`c1`, `c8`, `rps`)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run P6 and print its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--sets", type=int, default=None, help="document sets")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    baseline = baseline_path(args.baseline)
    count = args.sets or (20 if args.quick else 100)

    with bench_dir(args.workdir, "p6") as workdir, Children() as children:
        sandbox = start_sandbox(children, workdir)
        sets = write_sets(workdir / "inputs", count)
        with prefect_server(children, workdir) as (api_url, _):
            use_prefect_server(api_url, workdir, sandbox)
            rows = measure(sandbox, baseline, sets, workdir, full=not args.quick)
    emit(rows, args.json)
    return 0


def write_sets(directory: Path, count: int) -> Sets:
    """Write `count` pairs of distinct one- and two-page PDFs."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        [
            write_pdf(directory / f"set-{index:03d}-a.pdf", 1, label=f"set {index} a"),
            write_pdf(directory / f"set-{index:03d}-b.pdf", 2, label=f"set {index} b"),
        ]
        for index in range(count)
    ]


def measure(
    sandbox: Sandbox, baseline: Path, sets: Sets, workdir: Path, *, full: bool
) -> list[Row]:
    """Time the baseline, merge_batches and, in a full run, the extras."""
    run_merge_flow(sets[0], workdir / "warm-up.pdf", workdir / "state")
    runs: dict[str, tuple[float, RunCost]] = {}
    unavailable = prefect_unavailable_count()
    runs["c1"] = timed_cost(sandbox, lambda: run_batches(sets, workdir, "c1", 1, None))
    runs["c8"] = timed_cost(sandbox, lambda: run_batches(sets, workdir, "c8", 8, None))
    if full:
        runs["c8-rps"] = timed_cost(
            sandbox, lambda: run_batches(sets, workdir, "rps", 8, PAID_PLAN_RPS)
        )
        runs["threads"] = timed_cost(sandbox, lambda: run_threads(sets, workdir))
    unavailable = prefect_unavailable_count() - unavailable
    runs["baseline"] = timed_cost(
        sandbox, lambda: run_sequential(baseline, sandbox, sets, workdir)
    )
    for name, (seconds, cost) in runs.items():
        print(f"P6 {name}: {seconds:.1f} s, {cost.credits} credits", flush=True)
    return rows_for(runs, len(sets), unavailable)


def timed_cost(sandbox: Sandbox, run: Callable[[], None]) -> tuple[float, RunCost]:
    """Return the wall time and sandbox cost of `run`."""

    def timed() -> float:
        started = time.perf_counter()
        run()
        return time.perf_counter() - started

    return measure_cost(sandbox, timed)


def run_batches(
    sets: Sets, workdir: Path, name: str, concurrency: int, rate: float | None
) -> None:
    """Merge every set with `merge_batches`, recording sets that failed.

    A failed set does not stop the benchmark: `merge_batches` runs all sets
    before it raises, so the time still covers every set.
    """
    from flows.merge_batches import BatchSpec, merge_batches
    from pdfco_tasks.exceptions import BatchFailedError

    fresh_state_dir(workdir / "state")
    outputs = workdir / f"out-{name}"
    batches = [
        BatchSpec(
            sources=[str(path) for path in paths], output=str(outputs / f"{i}.pdf")
        )
        for i, paths in enumerate(sets)
    ]
    try:
        merge_batches(
            batches,
            max_concurrency=concurrency,
            requests_per_second=rate,
            overwrite=True,
        )
    except BatchFailedError as exc:
        failed = [o for o in exc.outcomes if o["status"] != "completed"]
        FAILURES[name] = [str(o["error"]) for o in failed]
        print(f"P6 {name}: {len(failed)} sets failed: {exc.message}", flush=True)


def run_threads(sets: Sets, workdir: Path) -> None:
    """Merge every set with the library alone on 8 threads."""
    outputs = workdir / "out-threads"
    outputs.mkdir(exist_ok=True)
    state_root = workdir / "state"
    fresh_state_dir(state_root)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [
            pool.submit(run_library_merge, paths, outputs / f"{i}.pdf", state_root)
            for i, paths in enumerate(sets)
        ]
        for future in futures:
            future.result()


def run_sequential(baseline: Path, sandbox: Sandbox, sets: Sets, workdir: Path) -> None:
    """Run the baseline once per set, one after another."""
    outputs = workdir / "out-baseline"
    outputs.mkdir(exist_ok=True)
    for index, paths in enumerate(sets):
        run_baseline(baseline, sandbox, paths, outputs / f"{index}.pdf", timeout=120)


def rows_for(
    runs: dict[str, tuple[float, RunCost]], count: int, unavailable: int
) -> list[Row]:
    """Turn the measurements into rows."""
    baseline, baseline_cost = runs["baseline"]
    scenario = f"{count} sets of 2 PDFs"
    rows = [
        batch_row(
            f"{scenario}: merge_batches, concurrency 8 vs baseline sequential",
            runs["c8"][0],
            baseline,
            "c8",
            count,
            f"{unavailable} Prefect API 503s in all merge_batches runs",
        ),
        batch_row(
            f"{scenario}: merge_batches, concurrency 1 vs baseline sequential",
            runs["c1"][0],
            baseline,
            "c1",
            count,
        ),
    ]
    if "c8-rps" in runs:
        rows.append(
            batch_row(
                f"{scenario}: merge_batches, concurrency 8, 10 requests/s",
                runs["c8-rps"][0],
                baseline,
                "rps",
                count,
                "PDF.co's paid-plan rate limit, enforced by the client",
            )
        )
    if "threads" in runs:
        rows.append(
            speedup_row(
                "P6",
                f"{scenario}: library alone on 8 threads (no Prefect)",
                runs["threads"][0],
                baseline,
            )
        )
    rows.append(
        speedup_row(
            "P6",
            f"{scenario}: credits per set, concurrency 8",
            runs["c8"][1].credits / count,
            baseline_cost.credits / count,
            unit="credits",
        )
    )
    return rows


def batch_row(
    measure: str, ours: float, baseline: float, name: str, count: int, note: str = ""
) -> Row:
    """Build a merge_batches row; a run with failed sets cannot meet the target."""
    failed = len(FAILURES.get(name, []))
    parts = [f"{count / ours * 60:.0f} sets/min"]
    if failed:
        parts.append(f"{failed} of {count} sets FAILED: {FAILURES[name][0][:160]}")
    if note:
        parts.append(note)
    target = TARGET_SPEEDUP if name == "c8" else None
    row = speedup_row(
        "P6", measure, ours, baseline, target=target, note="; ".join(parts)
    )
    if failed and row.met:
        row = replace(row, met=False)
    return row


if __name__ == "__main__":
    sys.exit(main())
