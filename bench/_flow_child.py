"""Run `merge_documents` once in a new process and print its timings as JSON.

The parent sets the environment: the PDF.co sandbox, PDFCO_TASKS_HOME and
either PREFECT_API_URL (a running server) or only PREFECT_HOME (a temporary
server that Prefect starts on first use).

Usage:
    python bench/_flow_child.py OUTPUT SOURCE [SOURCE ...]
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    """Import the flow, run it once and print import and run seconds."""
    started = time.perf_counter()
    from flows.merge_documents import merge_documents

    imported = time.perf_counter()
    result = merge_documents(argv[2:], argv[1], overwrite=True)
    finished = time.perf_counter()
    timings = {
        "import": imported - started,
        "flow": finished - imported,
        "pages": result["page_count"],
    }
    print(json.dumps(timings), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
