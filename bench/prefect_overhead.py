"""Prefect overhead: a temporary (ephemeral) server against a running one.

Measures, for one merge of two small PDFs:

- how long `prefect server start` takes until /api/health responds, with a
  new database (a one-off cost of a long-running server);
- a merge in a new process against the running server, against the same
  merge in a new process that has no PREFECT_API_URL, so Prefect starts a
  temporary server for it: first with a new PREFECT_HOME (a new database, as
  in CI or a fresh notebook machine), then with that database existing;
- in a warm process: the flow against the same steps without Prefect, and
  an empty sync flow against an empty async flow, which shows the fixed
  cost of one flow run.

This benchmark always starts its own server, because it measures the start.

Usage:
    python bench/prefect_overhead.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from _common import (
    Children,
    Row,
    Sandbox,
    add_common_options,
    bench_dir,
    child_env,
    drain_prefect_workers,
    emit,
    limit_row,
    median,
    run_bounded,
    speedup_row,
    start_prefect_server,
    start_sandbox,
    stop_on_sigterm,
)
from _flowrun import (
    fresh_state_dir,
    run_library_merge,
    run_merge_flow,
    use_prefect_server,
)
from _pdfgen import write_pdf

CHILD = Path(__file__).resolve().with_name("_flow_child.py")
CHILD_TIMEOUT = 300.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the Prefect overhead benchmark and print its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    repeat = 1 if args.quick else 3
    warm_repeat = 3 if args.quick else 7

    with bench_dir(args.workdir, "prefect") as workdir, Children() as children:
        sandbox = start_sandbox(children, workdir)
        sources = [
            write_pdf(workdir / "first.pdf", 2, label="first"),
            write_pdf(workdir / "second.pdf", 3, label="second"),
        ]
        process, api_url, start_seconds = start_prefect_server(children, workdir)
        print(f"PO prefect server start: {start_seconds:.1f} s", flush=True)
        cold = measure_cold(sandbox, sources, workdir, api_url, repeat)
        use_prefect_server(api_url, workdir, sandbox)
        warm = measure_warm(sources, workdir, warm_repeat)
        drain_prefect_workers()
        children.stop(process)
    emit(rows_for(start_seconds, cold, warm), args.json)
    return 0


def run_child(
    sandbox: Sandbox, sources: list[Path], workdir: Path, prefect: dict[str, str]
) -> float:
    """Run `_flow_child.py` in a new process and return its wall time."""
    state = fresh_state_dir(workdir / "state")
    env = child_env({**sandbox.client_env(), **prefect})
    env["PDFCO_TASKS_HOME"] = str(state)
    if "PREFECT_API_URL" not in prefect:
        env.pop("PREFECT_API_URL", None)
    args = [sys.executable, str(CHILD), str(workdir / "merged.pdf")]
    args += [str(path) for path in sources]
    started = time.perf_counter()
    result = run_bounded(args, env, CHILD_TIMEOUT)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"the flow child failed: {result.stderr[-2000:]}")
    timings = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"PO child: {elapsed:.2f} s ({timings})", flush=True)
    return elapsed


def measure_cold(
    sandbox: Sandbox, sources: list[Path], workdir: Path, api_url: str, repeat: int
) -> dict[str, list[float]]:
    """Time merges in new processes: running server, temporary server."""
    running_home = workdir / "child-home-running"
    running_home.mkdir(exist_ok=True)
    running = {"PREFECT_API_URL": api_url, "PREFECT_HOME": str(running_home)}
    results: dict[str, list[float]] = {"running": [], "new_db": [], "old_db": []}
    for index in range(repeat):
        results["running"].append(run_child(sandbox, sources, workdir, running))
        home = workdir / f"child-home-temporary-{index}"
        home.mkdir()
        temporary = {"PREFECT_HOME": str(home)}
        results["new_db"].append(run_child(sandbox, sources, workdir, temporary))
        results["old_db"].append(run_child(sandbox, sources, workdir, temporary))
    return results


def measure_warm(
    sources: list[Path], workdir: Path, repeat: int
) -> dict[str, list[float]]:
    """Time flow and library merges and empty flows in this process."""
    from prefect import flow

    @flow(name="bench-empty-sync")
    def empty_sync() -> None:
        return None

    @flow(name="bench-empty-async")
    async def empty_async() -> None:
        return None

    output = workdir / "merged.pdf"
    state_root = workdir / "state"
    run_merge_flow(sources, output, state_root)
    asyncio.run(empty_async())
    results: dict[str, list[float]] = {
        "flow": [],
        "library": [],
        "sync": [],
        "async": [],
    }
    for _ in range(repeat):
        results["flow"].append(run_merge_flow(sources, output, state_root)[0])
        results["library"].append(run_library_merge(sources, output, state_root)[0])
        results["sync"].append(_timed(lambda: empty_sync()))
        results["async"].append(_timed(lambda: asyncio.run(empty_async())))
    return results


def _timed(call: object) -> float:
    assert callable(call)
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def rows_for(
    start_seconds: float, cold: dict[str, list[float]], warm: dict[str, list[float]]
) -> list[Row]:
    """Turn the measurements into rows."""
    running = median(cold["running"])
    flow = median(warm["flow"])
    library = median(warm["library"])
    return [
        limit_row(
            "PO",
            "prefect server start, new database, until healthy",
            start_seconds,
            "s",
            note="paid once per server, not per merge",
        ),
        speedup_row(
            "PO",
            "merge in a new process: running server vs temporary server (new home)",
            running,
            median(cold["new_db"]),
            reference_name="temporary server",
            note="temporary server creates its database first",
        ),
        speedup_row(
            "PO",
            "merge in a new process: running server vs temporary server (old home)",
            running,
            median(cold["old_db"]),
            reference_name="temporary server",
        ),
        speedup_row(
            "PO",
            "merge in a warm process: library alone vs flow (running server)",
            library,
            flow,
            reference_name="flow",
            note=f"Prefect adds {flow - library:.2f} s per merge",
        ),
        speedup_row(
            "PO",
            "empty flow run: async vs sync",
            median(warm["async"]),
            median(warm["sync"]),
            reference_name="sync flow",
            note="a sync flow waits for its heartbeat thread at exit",
        ),
    ]


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    sys.exit(main())
