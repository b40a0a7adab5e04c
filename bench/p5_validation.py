"""P5: validating a 20,000-page merge result against `qpdf --show-npages`.

The file is shaped like a merge of 200 inputs of 100 pages: one flat page
tree and one top-level bookmark per input. It is measured twice, as written
(a classic cross-reference table, like pypdf's output) and rewritten by
`qpdf --object-streams=generate` (compressed object and xref streams).

Ours: `validate_merged_pdf` (page count, bookmarks, page span per input) and
`count_pdf_pages`, called in this process. References: `qpdf --show-npages`
in a new process, as a user would run it, and pypdf's `len(reader.pages)`.

Usage:
    python bench/p5_validation.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from _common import (
    Row,
    add_common_options,
    bench_dir,
    child_env,
    limit_row,
    median,
    run_bounded,
    speedup_row,
    stop_on_sigterm,
)
from _common import emit as emit_rows
from _pdfgen import write_merged_like

INPUTS = 200
PAGES_EACH = 100
LIMIT_SECONDS = 1.2
QPDF_TIMEOUT = 120.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run P5 and print its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    repeat = 3 if args.quick else 7
    if shutil.which("qpdf") is None:
        raise SystemExit("qpdf is required for P5")

    with bench_dir(args.workdir, "p5") as workdir:
        titles = [f"input-{index:03d}.pdf" for index in range(INPUTS)]
        classic = write_merged_like(workdir / "merged-20000.pdf", titles, PAGES_EACH)
        compact = workdir / "merged-20000-objstm.pdf"
        qpdf(["--object-streams=generate", str(classic), str(compact)])
        rows: list[Row] = []
        for label, path in (("xref table", classic), ("object streams", compact)):
            rows += measure(label, path, titles, repeat)
    emit_rows(rows, args.json)
    return 0


def measure(label: str, path: Path, titles: list[str], repeat: int) -> list[Row]:
    """Time our validation and counting and the references on one file."""
    from pdfco_tasks.inspection import count_pdf_pages
    from pdfco_tasks.models import InputSpec
    from pdfco_tasks.validation import validate_merged_pdf

    pages = INPUTS * PAGES_EACH
    specs = [
        InputSpec(
            source=str(path.parent / title),
            kind="pdf",
            size=1,
            sha256="",
            min_pages=PAGES_EACH,
            exact=True,
        )
        for title in titles
    ]

    def validate() -> None:
        report = validate_merged_pdf(path, specs)
        if report.page_count != pages or len(report.spans) != INPUTS:
            raise RuntimeError(f"validation found {report.page_count} pages")

    def count() -> None:
        if count_pdf_pages(path).pages != pages:
            raise RuntimeError("count_pdf_pages found a wrong count")

    def show_npages() -> None:
        if int(qpdf(["--show-npages", str(path)])) != pages:
            raise RuntimeError("qpdf found a wrong count")

    def pypdf_pages() -> None:
        from pypdf import PdfReader

        if len(PdfReader(path).pages) != pages:
            raise RuntimeError("pypdf found a wrong count")

    times = {
        "validate": median_of(validate, repeat),
        "count": median_of(count, repeat),
        "qpdf": median_of(show_npages, repeat),
        "pypdf": median_of(pypdf_pages, max(1, repeat // 3), warm_up=False),
        "count_cold": median_of(lambda: count_in_new_process(path), repeat),
    }
    print(f"P5 {label}: " + ", ".join(f"{k} {v:.3f} s" for k, v in times.items()))
    scenario = f"20,000 pages, {label}"
    return [
        limit_row(
            "P5",
            f"{scenario}: validate_merged_pdf vs qpdf --show-npages",
            times["validate"],
            "s",
            limit=LIMIT_SECONDS,
            reference=times["qpdf"],
            reference_name="qpdf",
            note=f"median of {repeat}; qpdf runs as a new process",
        ),
        speedup_row(
            "P5",
            f"{scenario}: count_pdf_pages vs qpdf --show-npages",
            times["count"],
            times["qpdf"],
            reference_name="qpdf",
        ),
        speedup_row(
            "P5",
            f"{scenario}: count_pdf_pages in a new process vs qpdf --show-npages",
            times["count_cold"],
            times["qpdf"],
            reference_name="qpdf",
            note="both start a process; ours imports Python and pypdf",
        ),
        speedup_row(
            "P5",
            f"{scenario}: count_pdf_pages vs pypdf len(reader.pages)",
            times["count"],
            times["pypdf"],
            reference_name="pypdf",
        ),
    ]


def median_of(fn: Callable[[], None], repeat: int, *, warm_up: bool = True) -> float:
    """Call `fn` once to warm caches, then `repeat` times; return the median."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return median(times)


def count_in_new_process(path: Path) -> None:
    """Count the pages with `count_pdf_pages` in a new Python process."""
    code = (
        "import sys; from pathlib import Path; "
        "from pdfco_tasks.inspection import count_pdf_pages; "
        "print(count_pdf_pages(Path(sys.argv[1])).pages)"
    )
    result = run_bounded([sys.executable, "-c", code, str(path)], child_env(), 120)
    if result.returncode != 0 or int(result.stdout) != INPUTS * PAGES_EACH:
        raise RuntimeError(f"count_pdf_pages failed in a new process: {result.stderr}")


def qpdf(args: list[str]) -> str:
    """Run qpdf and return its standard output."""
    result = subprocess.run(
        ["qpdf", *args],
        capture_output=True,
        text=True,
        timeout=QPDF_TIMEOUT,
        check=False,
    )
    # qpdf exits with 3 for warnings, which still produce a usable result.
    if result.returncode not in (0, 3):
        raise RuntimeError(f"qpdf {args[0]} failed: {result.stderr}")
    return result.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
