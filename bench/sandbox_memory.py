"""Measure the sandbox's peak memory while it takes and serves one large file.

Starts `pdfco-sandbox` as a subprocess, uploads a file through a presigned URL
(the body streamed from a generator) and downloads it again (streamed), then
prints the server's peak resident memory (VmHWM from /proc/PID/status) and the
throughput of both transfers. The goal is a peak below 200 MB for 1 GB.

Usage:
    python bench/sandbox_memory.py [--size-mb 1024] [--chunk-kb 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

API_KEY = "bench-key"
STARTUP_TIMEOUT_SECONDS = 30
MEMORY_GOAL_MB = 200


def sandbox_command() -> list[str]:
    """Return the installed `pdfco-sandbox` script, or the module as a fallback."""
    script = Path(sys.executable).parent / "pdfco-sandbox"
    if script.exists():
        return [str(script), "--log-level", "WARNING"]
    return [sys.executable, "-m", "pdfco_tasks.sandbox.cli", "--log-level", "WARNING"]


def memory_kb(pid: int, field: str) -> int:
    """Return a `VmHWM`/`VmRSS` value of a process in kB from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found for process {pid}")


def payload(size: int, chunk_size: int, digest: hashlib._Hash) -> Iterator[bytes]:
    """Yield `size` bytes in chunks of a repeating pattern, hashing as it goes."""
    block = bytes(range(256)) * (chunk_size // 256 + 1)
    sent = 0
    while sent < size:
        chunk = block[: min(chunk_size, size - sent)]
        digest.update(chunk)
        sent += len(chunk)
        yield chunk


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    """Start the sandbox and return the process and its base URL."""
    process = subprocess.Popen(
        [*sandbox_command(), "--port", "0", "--api-key", API_KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_SECONDS)
    if not ready:
        process.kill()
        raise RuntimeError("pdfco-sandbox did not print its base URL")
    return process, process.stdout.readline().strip()


def upload(base_url: str, size: int, chunk_size: int) -> tuple[str, str, float]:
    """Upload `size` bytes; return the GET URL, the SHA-256 and the seconds taken."""
    body = requests.get(
        f"{base_url}/file/upload/get-presigned-url",
        params={"name": "big.bin", "contenttype": "application/octet-stream"},
        headers={"x-api-key": API_KEY},
        timeout=30,
    ).json()
    digest = hashlib.sha256()
    started = time.monotonic()
    response = requests.put(
        body["presignedUrl"],
        data=payload(size, chunk_size, digest),
        headers={"content-type": "application/octet-stream"},
        timeout=600,
    )
    response.raise_for_status()
    return body["url"], digest.hexdigest(), time.monotonic() - started


def download(url: str, chunk_size: int) -> tuple[int, str, float]:
    """Stream a file; return its size, its SHA-256 and the seconds taken."""
    digest = hashlib.sha256()
    received = 0
    started = time.monotonic()
    with requests.get(url, stream=True, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size):
            digest.update(chunk)
            received += len(chunk)
    return received, digest.hexdigest(), time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size-mb", type=int, default=1024, help="file size in MiB (default: 1024)"
    )
    parser.add_argument(
        "--chunk-kb",
        type=int,
        default=1024,
        help="client chunk size in KiB (default: 1024)",
    )
    args = parser.parse_args(argv)
    size = args.size_mb * 1024 * 1024
    chunk_size = args.chunk_kb * 1024

    process, base_url = start_sandbox()
    try:
        idle_kb = memory_kb(process.pid, "VmRSS")
        url, sent_hash, upload_seconds = upload(base_url, size, chunk_size)
        after_upload_kb = memory_kb(process.pid, "VmHWM")
        received, received_hash, download_seconds = download(url, chunk_size)
        peak_kb = memory_kb(process.pid, "VmHWM")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    mib = size / 1024 / 1024
    print(f"file size:            {mib:.0f} MiB")
    print(f"server RSS at idle:   {idle_kb / 1024:.1f} MiB")
    print(f"server peak (upload): {after_upload_kb / 1024:.1f} MiB (VmHWM)")
    print(
        f"server peak (total):  {peak_kb / 1024:.1f} MiB (VmHWM), "
        f"goal < {MEMORY_GOAL_MB} MB"
    )
    print(
        f"upload:               {upload_seconds:.2f} s, "
        f"{mib / upload_seconds:.0f} MiB/s"
    )
    print(
        f"download:             {download_seconds:.2f} s, "
        f"{mib / download_seconds:.0f} MiB/s"
    )
    print(f"bytes intact:         {received == size and sent_hash == received_hash}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
