"""Upload or download one file with `PdfcoClient` in its own process.

The parent reads this process's peak memory (VmHWM in /proc/PID/status)
after the JSON line appears and before it closes stdin, which ends the
process. Only the client modules are imported, not Prefect.

Usage:
    python bench/_transfer_child.py download URL TARGET
    python bench/_transfer_child.py upload PATH
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run one transfer, print its timing as JSON and wait for stdin to close."""
    from pdfco_tasks.client import PdfcoClient
    from pdfco_tasks.inspection import file_sha256
    from pdfco_tasks.settings import PdfcoSettings

    settings = PdfcoSettings.from_env()
    report: dict[str, object] = {"hwm_before_kib": _vm_hwm_kib()}
    with PdfcoClient(settings) as client:
        if argv[1] == "download":
            target = Path(argv[3])
            started = time.perf_counter()
            client.download(argv[2], target)
            report["seconds"] = time.perf_counter() - started
            report["bytes"] = target.stat().st_size
        else:
            path = Path(argv[2])
            started = time.perf_counter()
            digest = file_sha256(path)
            report["hash_seconds"] = time.perf_counter() - started
            started = time.perf_counter()
            upload = client.upload_file(path, sha256=digest)
            report["seconds"] = time.perf_counter() - started
            report["bytes"] = path.stat().st_size
            report["url"] = upload.url
    print(json.dumps(report), flush=True)
    sys.stdin.readline()
    return 0


def _vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
