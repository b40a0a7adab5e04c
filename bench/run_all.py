"""Run every benchmark and print one table of all ratios.

Each benchmark runs as its own process (`python bench/<script> --json FILE`)
with a time limit, and its output passes through as it comes. Benchmarks
that need a running Prefect server share one, started here on a free
loopback port with its own PREFECT_HOME. A benchmark that fails is reported
and the others still run; the exit status is 1 when any failed.

Usage:
    python bench/run_all.py [--quick] [--only p1,p5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from _common import (
    DATABASE_ENV,
    SHARED_SERVER_ENV,
    Children,
    bench_dir,
    child_env,
    machine_info,
    start_prefect_server,
    stop_on_sigterm,
)

BENCH = Path(__file__).resolve().parent
BENCHMARKS: dict[str, tuple[str, bool]] = {
    "p1": ("p1_two_pdfs.py", True),
    "p2": ("p2_twenty_pdfs.py", True),
    "p3": ("p3_large_download.py", False),
    "p4": ("p4_polling.py", False),
    "p5": ("p5_validation.py", False),
    "p6": ("p6_batches.py", True),
    "po": ("prefect_overhead.py", False),
}
"""Benchmark id: script, and whether it needs a running Prefect server."""

QUICK_TIMEOUT = 900.0
FULL_TIMEOUT = 3600.0
COLUMNS = ("Bench", "Measure", "Ours", "Reference", "Ratio", "Target", "Met")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated ids out of {','.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="write all rows"
    )
    parser.add_argument(
        "--baseline", type=Path, default=None, metavar="PATH", help="baseline script"
    )
    parser.add_argument(
        "--prefect-db",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="database of the Prefect servers started (default: sqlite); "
        "postgres needs a local PostgreSQL installation",
    )
    args = parser.parse_args(argv)
    stop_on_sigterm()
    os.environ[DATABASE_ENV] = args.prefect_db
    selected = [name.strip().lower() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in selected if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark ids {unknown}; choose from {list(BENCHMARKS)}")

    info = machine_info()
    print_info(info)
    results, failed = run_selected(selected, args)
    print_table(results)
    if args.json is not None:
        args.json.write_text(
            json.dumps({"machine": info, "results": results}, indent=2)
        )
    if failed:
        print(f"FAILED: {', '.join(failed)}", flush=True)
        return 1
    return 0


def run_selected(
    selected: list[str], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run each selected benchmark; return all rows and the ids that failed."""
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    users = [name for name in selected if BENCHMARKS[name][1]]
    with bench_dir(None, "all") as workdir, Children() as children:
        env = child_env()
        server = None
        if users:
            server, url, seconds = start_prefect_server(children, workdir)
            print(f"shared Prefect server at {url}, healthy after {seconds:.1f} s")
            env[SHARED_SERVER_ENV] = url
        for name in selected:
            rows = run_one(name, args, env, workdir)
            if rows is None:
                failed.append(name)
            else:
                results.extend(rows)
            if server is not None and name == users[-1]:
                # Later benchmarks start their own servers; stop this one first.
                children.stop(server)
                server = None
    return results, failed


def run_one(
    name: str, args: argparse.Namespace, env: dict[str, str], workdir: Path
) -> list[dict[str, Any]] | None:
    """Run one benchmark script; return its rows, or None when it failed."""
    script, _ = BENCHMARKS[name]
    output = workdir / f"{name}.json"
    command = [sys.executable, str(BENCH / script), "--json", str(output)]
    if args.quick:
        command.append("--quick")
    if args.baseline is not None:
        command += ["--baseline", str(args.baseline)]
    timeout = QUICK_TIMEOUT if args.quick else FULL_TIMEOUT

    print(f"=== {name}: {script} (load average {_load()})", flush=True)
    started = time.perf_counter()
    status = _run_streamed(command, env, timeout)
    elapsed = time.perf_counter() - started
    print(f"=== {name}: exit {status} after {elapsed:.0f} s", flush=True)
    if status != 0 or not output.is_file():
        return None
    rows: list[dict[str, Any]] = json.loads(output.read_text())
    return rows


def _run_streamed(command: list[str], env: dict[str, str], timeout: float) -> int:
    """Run a child with inherited output; kill its process group on timeout."""
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"{command[1]} did not finish within {timeout:.0f} s", flush=True)
        return -1
    finally:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def print_info(info: dict[str, str]) -> None:
    """Print the machine and software versions."""
    print("MACHINE " + "; ".join(f"{key}: {value}" for key, value in info.items()))


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print every row as a Markdown table."""
    print()
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        cells = [
            row["bench"],
            row["measure"],
            _value(row["ours"], row["unit"]),
            _reference(row),
            f"{row['ratio']:.2f}x" if row["ratio"] is not None else "",
            row["target"],
            {True: "yes", False: "**no**", None: ""}[row["met"]],
        ]
        print("| " + " | ".join(cells) + " |")
    print(flush=True)


def _reference(row: dict[str, Any]) -> str:
    if row["reference"] is None:
        return ""
    return f"{row['reference_name']} {_value(row['reference'], row['unit'])}"


def _value(value: float, unit: str) -> str:
    if abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}"


if __name__ == "__main__":
    sys.exit(main())
