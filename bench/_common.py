"""Shared parts of the benchmark scripts: child processes, results and options.

Every benchmark starts its own PDF.co sandbox (`pdfco-sandbox`) on 127.0.0.1,
runs our client and the baseline script against it on the same inputs, and
reports each comparison as a `Row`. Child processes are registered in a
`Children` group and stopped when the benchmark ends, also on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import requests

__all__ = [
    "API_KEY",
    "DATABASE_ENV",
    "SHARED_SERVER_ENV",
    "Children",
    "Row",
    "Sandbox",
    "add_common_options",
    "baseline_path",
    "bench_dir",
    "child_env",
    "drain_prefect_workers",
    "emit",
    "free_port",
    "limit_row",
    "machine_info",
    "median",
    "prefect_server",
    "run_baseline",
    "run_bounded",
    "speedup_row",
    "start_prefect_server",
    "start_sandbox",
    "stop_on_sigterm",
    "throughput_row",
    "timed",
]

API_KEY = "bench-key"
BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
BASELINE_ENV = "PDFCO_BENCH_BASELINE"
# The vendor sample's algorithm is kept beside the repository, not in it.
DEFAULT_BASELINE = REPO_DIR.parent / "shared" / "baseline" / "seed_style_merge.py"
SHARED_SERVER_ENV = "PDFCO_BENCH_PREFECT_API_URL"
DATABASE_ENV = "PDFCO_BENCH_PREFECT_DB"
SANDBOX_START_TIMEOUT = 60.0
PREFECT_START_TIMEOUT = 180.0
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Row:
    """One measured comparison, as printed and as written to JSON.

    Attributes:
        bench: Benchmark id, such as `P1`.
        measure: What was measured.
        ours: Our value, in `unit`.
        reference: The baseline's or reference tool's value, in `unit`.
        unit: Unit of `ours` and `reference`, such as `s` or `MB/s`.
        reference_name: What `reference` is, such as `baseline` or `curl`.
        ratio: The factor in our favour: reference over ours for times,
            ours over reference for throughputs; None when not a comparison.
        target: The target in words, such as `>= 3x`; empty when none.
        met: Whether the target was met; None when there is no target.
        note: A short remark printed after the row.
    """

    bench: str
    measure: str
    ours: float
    reference: float | None
    unit: str
    reference_name: str = "baseline"
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    def line(self) -> str:
        """Format the row as one `RATIO` or `RESULT` line."""
        kind = "RATIO" if self.ratio is not None else "RESULT"
        parts = [
            f"{kind} {self.bench}",
            self.measure,
            f"ours {_num(self.ours)} {self.unit}",
        ]
        if self.reference is not None:
            parts.append(f"{self.reference_name} {_num(self.reference)} {self.unit}")
        if self.ratio is not None:
            parts.append(f"ratio {self.ratio:.2f}x")
        if self.target:
            verdict = "met" if self.met else "MISSED"
            parts.append(f"target {self.target}: {verdict}")
        if self.note:
            parts.append(self.note)
        return " | ".join(parts)


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"


def speedup_row(
    bench: str,
    measure: str,
    ours: float,
    reference: float,
    *,
    target: float | None = None,
    reference_name: str = "baseline",
    unit: str = "s",
    note: str = "",
) -> Row:
    """Compare two durations (or counts) where less is better."""
    ratio = reference / ours if ours > 0 else float("inf")
    return Row(
        bench,
        measure,
        ours,
        reference,
        unit,
        reference_name,
        ratio,
        f">= {target:g}x" if target is not None else "",
        ratio >= target if target is not None else None,
        note,
    )


def throughput_row(
    bench: str,
    measure: str,
    ours: float,
    reference: float,
    *,
    target: float | None = None,
    reference_name: str,
    unit: str = "MB/s",
    note: str = "",
) -> Row:
    """Compare two rates where more is better; `target` is a fraction."""
    ratio = ours / reference if reference > 0 else float("inf")
    return Row(
        bench,
        measure,
        ours,
        reference,
        unit,
        reference_name,
        ratio,
        f">= {target:.0%} of {reference_name}" if target is not None else "",
        ratio >= target if target is not None else None,
        note,
    )


def limit_row(
    bench: str,
    measure: str,
    ours: float,
    unit: str,
    *,
    limit: float | None = None,
    reference: float | None = None,
    reference_name: str = "baseline",
    note: str = "",
) -> Row:
    """Report a value where less is better, against an optional upper limit.

    With a `reference`, the row also carries the ratio reference over ours.
    """
    ratio = None
    if reference is not None:
        ratio = reference / ours if ours > 0 else float("inf")
    return Row(
        bench,
        measure,
        ours,
        reference,
        unit,
        reference_name,
        ratio,
        f"<= {limit:g} {unit}" if limit is not None else "",
        ours <= limit if limit is not None else None,
        note,
    )


def emit(rows: Sequence[Row], json_path: Path | None) -> None:
    """Print every row and write them to `json_path` when given."""
    for row in rows:
        print(row.line(), flush=True)
    if json_path is not None:
        json_path.write_text(json.dumps([asdict(row) for row in rows], indent=2))


def median(values: Sequence[float]) -> float:
    """Return the median; raises `ValueError` on an empty sequence."""
    if not values:
        raise ValueError("no values to take the median of")
    return statistics.median(values)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Add `--quick`, `--json`, `--baseline` and `--workdir` to a parser."""
    parser.add_argument(
        "--quick", action="store_true", help="smaller inputs and fewer repetitions"
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="write rows as JSON"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"the vendor-sample baseline script (default: ${BASELINE_ENV} or "
        f"{DEFAULT_BASELINE})",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        metavar="DIR",
        help="scratch directory (default: a temporary one, removed at the end)",
    )


def baseline_path(option: Path | None) -> Path:
    """Resolve the baseline script from the option, the environment or the default.

    Raises:
        SystemExit: When the script does not exist.
    """
    path = option or Path(os.environ.get(BASELINE_ENV) or DEFAULT_BASELINE)
    if not path.is_file():
        raise SystemExit(
            f"baseline script {path} not found; pass --baseline PATH or set "
            f"{BASELINE_ENV}"
        )
    return path


@contextmanager
def bench_dir(option: Path | None, prefix: str) -> Iterator[Path]:
    """Yield the scratch directory; a temporary one is removed afterwards."""
    if option is not None:
        option.mkdir(parents=True, exist_ok=True)
        yield option
        return
    path = Path(tempfile.mkdtemp(prefix=f"pdfco-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stop_on_sigterm() -> None:
    """Turn SIGTERM into `SystemExit`, so `finally` blocks stop the children."""

    def handler(number: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + number)

    signal.signal(signal.SIGTERM, handler)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment for a child: quiet Prefect, no telemetry."""
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_COLORS": "false",
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
            "PREFECT_UI_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


class Children:
    """Child processes of one benchmark; `close` stops all that still run.

    Each child runs in its own session, so stopping it also stops the
    processes it started (for example the Prefect server's own workers). Only
    children started here are ever signalled.
    """

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[Any]] = []
        self._directories: list[Path] = []

    def remove_on_close(self, directory: Path) -> None:
        """Remove `directory` once every child has stopped."""
        self._directories.append(directory)

    def start(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        stdin: int = subprocess.DEVNULL,
    ) -> subprocess.Popen[Any]:
        """Start a child in a new session and remember it."""
        process = subprocess.Popen(
            list(args),
            env=dict(env),
            stdout=stdout,
            stderr=stderr,
            stdin=stdin,
            start_new_session=True,
            text=True,
        )
        self._processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[Any]) -> None:
        """Send SIGTERM to the child's process group, then SIGKILL if needed."""
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(STOP_TIMEOUT)
        if process in self._processes:
            self._processes.remove(process)

    def close(self) -> None:
        """Stop every child, the most recent first, then remove directories."""
        for process in reversed(list(self._processes)):
            self.stop(process)
        for directory in self._directories:
            shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _signal_group(process: subprocess.Popen[Any], number: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, number)


@dataclass(frozen=True)
class Sandbox:
    """A `pdfco-sandbox` child process.

    Attributes:
        base_url: API root, such as `http://127.0.0.1:PORT/v1`.
        origin: Scheme, host and port, for the `/__sandbox` control routes.
        process: The child.
    """

    base_url: str
    origin: str
    process: subprocess.Popen[Any]

    def counters(self) -> dict[str, Any]:
        """Return the sandbox counters, including the request log."""
        response = requests.get(f"{self.origin}/__sandbox/counters", timeout=30)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def reset_counters(self) -> None:
        """Set the counters back to zero and clear the request log."""
        response = requests.post(f"{self.origin}/__sandbox/reset-counters", timeout=30)
        response.raise_for_status()

    def client_env(self) -> dict[str, str]:
        """Return the variables that point a client at this sandbox."""
        return {"PDFCO_BASE_URL": self.base_url, "PDFCO_API_KEY": API_KEY}


def start_sandbox(
    children: Children,
    workdir: Path,
    *,
    job_latency: float = 0.0,
    name: str = "sandbox",
) -> Sandbox:
    """Start `pdfco-sandbox` on a free loopback port and wait for its base URL.

    Args:
        children: Where the child is registered.
        workdir: Directory for its data and its log file.
        job_latency: Seconds every async job reports `working` at least.
        name: Name of the data directory and log file.

    Raises:
        RuntimeError: When the sandbox prints no URL within 60 seconds.
    """
    data_dir = workdir / f"{name}-data"
    log = (workdir / f"{name}.log").open("w")
    args = [
        str(Path(sys.executable).with_name("pdfco-sandbox")),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--api-key",
        API_KEY,
        "--job-latency",
        str(job_latency),
        "--credits",
        "1000000000",
        "--data-dir",
        str(data_dir),
        "--log-level",
        "WARNING",
    ]
    process = children.start(args, env=child_env(), stdout=subprocess.PIPE, stderr=log)
    log.close()
    line = _first_line(process, SANDBOX_START_TIMEOUT)
    if not line.startswith("http://127.0.0.1:"):
        children.stop(process)
        raise RuntimeError(
            f"pdfco-sandbox printed {line!r} instead of its base URL; see "
            f"{workdir / (name + '.log')}"
        )
    base_url = line.strip()
    return Sandbox(base_url, base_url.rsplit("/v1", 1)[0], process)


def _first_line(process: subprocess.Popen[Any], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    stream = process.stdout
    assert stream is not None
    reader = threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


@contextmanager
def prefect_server(children: Children, workdir: Path) -> Iterator[tuple[str, float]]:
    """Yield the API URL of a running Prefect server and its start time in seconds.

    When `PDFCO_BENCH_PREFECT_API_URL` is set (run_all.py shares one server
    between benchmarks), that server is used and the start time is 0.
    Otherwise `prefect server start` runs on a free loopback port with its own
    PREFECT_HOME under `workdir`, and is stopped afterwards.

    Raises:
        RuntimeError: When the server does not respond to /api/health in time.
    """
    shared = os.environ.get(SHARED_SERVER_ENV)
    if shared:
        yield shared, 0.0
        return
    process, url, seconds = start_prefect_server(children, workdir)
    try:
        yield url, seconds
    finally:
        drain_prefect_workers()
        children.stop(process)


def drain_prefect_workers() -> None:
    """Send this process's queued Prefect logs and events before a server stops.

    Without this, Prefect's background workers report connection errors when
    they flush at exit to a server that is gone.
    """
    if "prefect" not in sys.modules:
        return
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        with suppress(RuntimeError):
            logs = APILogWorker.instance().drain()
            if inspect.isawaitable(logs):
                await logs
        events = EventsWorker.drain_all()
        if inspect.isawaitable(events):
            await events

    run_coro_as_sync(drain())


def start_prefect_server(
    children: Children, workdir: Path
) -> tuple[subprocess.Popen[Any], str, float]:
    """Start `prefect server start` and wait until it is healthy.

    The server keeps its data in SQLite under its own PREFECT_HOME, or in a
    new PostgreSQL database when `PDFCO_BENCH_PREFECT_DB` is `postgres`.

    Returns:
        The child, the API URL and the seconds from start to healthy.
    """
    port = free_port()
    home = workdir / "prefect-server-home"
    home.mkdir(parents=True, exist_ok=True)
    env = child_env({"PREFECT_HOME": str(home)})
    env.pop("PREFECT_API_URL", None)
    if os.environ.get(DATABASE_ENV, "sqlite") == "postgres":
        from _postgres import start_postgres

        database_url, data = start_postgres(children)
        children.remove_on_close(data)
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    log = (workdir / "prefect-server.log").open("w")
    args = [
        str(Path(sys.executable).with_name("prefect")),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    started = time.perf_counter()
    process = children.start(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}/api"
    _wait_healthy(process, url, workdir / "prefect-server.log")
    return process, url, time.perf_counter() - started


def _wait_healthy(process: subprocess.Popen[Any], url: str, log: Path) -> None:
    deadline = time.monotonic() + PREFECT_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited early; see {log}")
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"the Prefect server did not respond within {PREFECT_START_TIMEOUT:.0f} s; "
        f"see {log}"
    )


def run_baseline(
    baseline: Path,
    sandbox: Sandbox,
    sources: Sequence[Path],
    output: Path,
    *,
    timeout: float = 600.0,
) -> float:
    """Run the baseline script once as a child and return its wall time.

    Raises:
        RuntimeError: When it fails, times out or writes no output.
    """
    output.unlink(missing_ok=True)
    args = [sys.executable, str(baseline), str(output), *map(str, sources)]
    env = child_env(sandbox.client_env())
    started = time.perf_counter()
    result = _run_bounded(args, env, timeout)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or not output.is_file():
        raise RuntimeError(
            f"the baseline exited with {result.returncode}: {result.stderr[-2000:]}"
        )
    return elapsed


def _run_bounded(
    args: Sequence[str], env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a child to completion, killing its process group on timeout."""
    process = subprocess.Popen(
        list(args),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.communicate()
        raise RuntimeError(f"{args[0]} did not finish within {timeout:.0f} s") from None
    except BaseException:
        _signal_group(process, signal.SIGKILL)
        process.wait()
        raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def run_bounded(
    args: Sequence[str], env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a child to completion within `timeout` seconds.

    Raises:
        RuntimeError: When it does not finish in time; it is killed first.
    """
    return _run_bounded(args, env, timeout)


def timed(fn: Callable[[], object]) -> float:
    """Call `fn` and return the seconds it took."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def machine_info() -> dict[str, str]:
    """Describe the machine and the software versions of a run."""
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "ram": _ram(),
        "python": platform.python_version(),
        "os": platform.platform(),
    }
    for package in (
        "pdfco-tasks",
        "prefect",
        "requests",
        "urllib3",
        "pypdf",
        "uvicorn",
    ):
        info[package] = _package_version(package)
    info["prefect database"] = os.environ.get(DATABASE_ENV, "sqlite")
    info["qpdf"] = _tool_version(["qpdf", "--version"])
    info["curl"] = _tool_version(["curl", "--version"])
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024**2:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _tool_version(args: list[str]) -> str:
    try:
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    first = (result.stdout or result.stderr).splitlines()
    return first[0].strip() if first else "unknown"
