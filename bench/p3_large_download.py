"""P3: a 1 GB result: download throughput and peak memory of our client.

The file goes into the sandbox through a presigned PUT, and its GET URL is
downloaded: the sandbox serves uploads and merge results by the same code.
Compares `PdfcoClient.download` (run in its own process, which imports only
the client) with `curl -o` on loopback, alternating them after one warm-up
download. Our time is the `download()` call, measured inside the child; the
child's peak memory is read from /proc/PID/status (VmHWM) before it exits.
Our client syncs the file to disk before renaming it into place, so curl is
also reported with an fsync of its output. The upload through the presigned
PUT is compared with `curl -T` once. With --quick the file is 100 MB.

Usage:
    python bench/p3_large_download.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from _common import (
    API_KEY,
    Children,
    Row,
    Sandbox,
    add_common_options,
    bench_dir,
    child_env,
    emit,
    limit_row,
    median,
    run_bounded,
    start_sandbox,
    stop_on_sigterm,
    throughput_row,
)
from _pdfgen import write_padded_file

CHILD = Path(__file__).resolve().with_name("_transfer_child.py")
TARGET_SHARE = 0.8
MEMORY_LIMIT_MIB = 150
TRANSFER_TIMEOUT = 600.0
MB = 1_000_000
MIB = 1024 * 1024


def main(argv: Sequence[str] | None = None) -> int:
    """Run P3 and print its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    size = 100 * MIB if args.quick else 1024 * MIB
    repeat = 2 if args.quick else 3
    if shutil.which("curl") is None:
        raise SystemExit("curl is required for P3")

    with bench_dir(args.workdir, "p3") as workdir, Children() as children:
        sandbox = start_sandbox(children, workdir)
        source = write_padded_file(workdir / "large.pdf", size)
        rows = measure(children, sandbox, source, workdir, repeat)
    emit(rows, args.json)
    return 0


def measure(
    children: Children, sandbox: Sandbox, source: Path, workdir: Path, repeat: int
) -> list[Row]:
    """Upload once with each tool, then download alternately."""
    curl_upload, url = curl_put(sandbox, source)
    ours_upload, upload_hwm = run_child(
        children, sandbox, ["upload", str(source)], workdir
    )
    size = source.stat().st_size
    target = workdir / "downloaded.pdf"
    curl_get(url, target)
    target.unlink()

    curl_times: list[float] = []
    fsync_times: list[float] = []
    curl_rss: list[int] = []
    ours_times: list[float] = []
    ours_hwm: list[int] = []
    ours_base: list[int] = []
    for index in range(repeat):
        seconds, rss = curl_get(url, target)
        curl_times.append(seconds)
        curl_rss.append(rss)
        fsync_times.append(fsync_seconds(target))
        target.unlink()
        report, hwm = run_child(
            children, sandbox, ["download", url, str(target)], workdir
        )
        if report["bytes"] != size:
            raise RuntimeError(f"downloaded {report['bytes']} of {size} bytes")
        ours_times.append(float(report["seconds"]))
        ours_hwm.append(hwm)
        ours_base.append(int(report["hwm_before_kib"]))
        target.unlink()
        print(
            f"P3 run {index + 1}: curl {curl_times[-1]:.2f} s "
            f"(+ fsync {fsync_times[-1]:.2f} s), ours {ours_times[-1]:.2f} s, "
            f"ours VmHWM {hwm / 1024:.0f} MiB",
            flush=True,
        )

    label = (
        f"{size / MIB:.0f} MiB" if size < 1024 * MIB else f"{size / MIB / 1024:g} GiB"
    )
    ours_rate = size / MB / median(ours_times)
    curl_rate = size / MB / median(curl_times)
    synced = [a + b for a, b in zip(curl_times, fsync_times, strict=True)]
    return [
        throughput_row(
            "P3",
            f"download {label}: PdfcoClient.download vs curl -o",
            ours_rate,
            curl_rate,
            target=TARGET_SHARE,
            reference_name="curl",
            note=f"median of {repeat}; ours includes fsync",
        ),
        throughput_row(
            "P3",
            f"download {label}: PdfcoClient.download vs curl -o plus fsync",
            ours_rate,
            size / MB / median(synced),
            reference_name="curl+fsync",
        ),
        limit_row(
            "P3",
            f"download {label}: client peak memory (VmHWM)",
            max(ours_hwm) / 1024,
            "MiB",
            limit=MEMORY_LIMIT_MIB,
            reference=max(curl_rss) / 1024 if max(curl_rss) else None,
            reference_name="curl",
            note=f"{max(ours_base) / 1024:.0f} MiB of it before the download "
            "(interpreter and client imports)",
        ),
        throughput_row(
            "P3",
            f"upload {label}: PdfcoClient.upload_file vs curl -T",
            size / MB / float(ours_upload["seconds"]),
            size / MB / curl_upload,
            reference_name="curl",
            note=f"one run each; SHA-256 ({float(ours_upload['hash_seconds']):.1f} s) "
            "not counted",
        ),
        limit_row(
            "P3",
            f"upload {label}: client peak memory (VmHWM)",
            upload_hwm / 1024,
            "MiB",
        ),
    ]


def curl_put(sandbox: Sandbox, source: Path) -> tuple[float, str]:
    """Upload with `curl -T` through a presigned URL; return seconds and GET URL."""
    response = requests.get(
        f"{sandbox.base_url}/file/upload/get-presigned-url",
        params={"name": source.name, "contenttype": "application/octet-stream"},
        headers={"x-api-key": API_KEY},
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    args = ["curl", "-sS", "--fail", "-T", str(source)]
    args += ["-H", "Content-Type: application/octet-stream", body["presignedUrl"]]
    started = time.perf_counter()
    result = run_bounded(args, child_env(), TRANSFER_TIMEOUT)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"curl upload failed: {result.stderr}")
    return elapsed, str(body["url"])


def curl_get(url: str, target: Path) -> tuple[float, int]:
    """Download with `curl -o`; return seconds and curl's peak RSS in KiB.

    The RSS comes from GNU time when /usr/bin/time exists, else it is 0.
    """
    args = ["curl", "-sS", "--fail", "-o", str(target), url]
    if Path("/usr/bin/time").exists():
        args = ["/usr/bin/time", "-f", "maxrss=%M", *args]
    started = time.perf_counter()
    result = run_bounded(args, child_env(), TRANSFER_TIMEOUT)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"curl download failed: {result.stderr}")
    rss = 0
    for line in result.stderr.splitlines():
        if line.startswith("maxrss="):
            rss = int(line.split("=", 1)[1])
    return elapsed, rss


def fsync_seconds(path: Path) -> float:
    """Sync a file to disk and return how long that took."""
    started = time.perf_counter()
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return time.perf_counter() - started


def run_child(
    children: Children, sandbox: Sandbox, args: list[str], workdir: Path
) -> tuple[dict[str, Any], int]:
    """Run `_transfer_child.py`; return its JSON report and its VmHWM in KiB."""
    env = child_env(sandbox.client_env())
    env["PDFCO_TASKS_HOME"] = str(workdir / "state")
    command = [sys.executable, str(CHILD), *args]
    with (workdir / "transfer-child.log").open("a") as log:
        process = children.start(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.PIPE,
        )
    return _collect(children, process, command, workdir)


def _collect(
    children: Children,
    process: subprocess.Popen[Any],
    command: list[str],
    workdir: Path,
) -> tuple[dict[str, Any], int]:
    line = _read_line(process, TRANSFER_TIMEOUT)
    try:
        if not line:
            raise RuntimeError(
                f"{' '.join(command[1:3])} printed nothing; see "
                f"{workdir / 'transfer-child.log'}"
            )
        hwm = vm_hwm_kib(process.pid)
        return json.loads(line), hwm
    finally:
        if process.stdin is not None:
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
        children.stop(process)


def _read_line(process: subprocess.Popen[Any], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    stream = process.stdout
    assert stream is not None
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


def vm_hwm_kib(pid: int) -> int:
    """Return the peak resident set size of a running process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")


if __name__ == "__main__":
    sys.exit(main())
