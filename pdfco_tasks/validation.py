"""Prove that a merged PDF is whole before anyone receives it.

`validate_merged_pdf` checks that the downloaded file has a `%PDF-` header
and an `%%EOF` marker and that pypdf can read it. Its page count must match
the exact or minimum pages of the inputs, and the `pageCount` that PDF.co
reported. It then works out which output pages came from which input.

Page spans come from the document outline when the merge added one bookmark
per input, titled with the input's file name (PDF.co's `GenerateBookmarks`
profile). Without such an outline they come from the page counts. Those spans
are exact when all converted inputs got their minimum or at most one input was
converted by PDF.co, and estimates otherwise.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

from pdfco_tasks._pagetree import (
    OutlineItem,
    PageWalk,
    PdfUnreadableError,
    open_pdf,
    read_top_outline,
    short_error,
    walk_pages,
)
from pdfco_tasks.exceptions import ValidationError
from pdfco_tasks.inspection import source_for_display
from pdfco_tasks.models import InputSpec, PageSpan

__all__ = [
    "REJECTED_MARKER",
    "ValidationReport",
    "expected_pages",
    "keep_rejected",
    "validate_merged_pdf",
]

REJECTED_MARKER = "FAILED-VALIDATION"
"""Inserted before the suffix of a rejected download: `out.FAILED-VALIDATION.pdf`."""

_EOF_WINDOW = 1024
_MAX_KEEP_ATTEMPTS = 1000

_RETRY_DOWNLOAD = (
    "The download is incomplete or is not the merge result; download the result "
    "again, or rerun the merge if the result link has expired."
)
_RETRY_MERGE = (
    "PDF.co dropped or added pages; rerun the merge, and if the count is wrong "
    "again, merge the inputs in smaller groups to find the input that converts "
    "differently."
)


@dataclass(frozen=True)
class ValidationReport:
    """A merged PDF that passed validation.

    Attributes:
        page_count: Pages in the merged file, counted by walking its page tree.
        spans: Output pages per input, in input order.
        expected_min: Pages the inputs add up to at least.
        exact: Whether `expected_min` was the exact expected count, which is
            the case when every input is a PDF or an image.
        notes: Remarks for the log, such as page spans that are estimates.
    """

    page_count: int
    spans: tuple[PageSpan, ...]
    expected_min: int
    exact: bool
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-friendly lists and dictionaries."""
        return {
            "page_count": self.page_count,
            "spans": [span.to_dict() for span in self.spans],
            "expected_min": self.expected_min,
            "exact": self.exact,
            "notes": list(self.notes),
        }


def expected_pages(inputs: Sequence[InputSpec]) -> tuple[int, bool]:
    """Return the pages the inputs add up to at least, and whether exactly.

    Args:
        inputs: The inspected inputs of one merge.

    Returns:
        `(minimum total, exact)`; `exact` is True only when every input's
        count is exact.
    """
    total = sum(spec.min_pages for spec in inputs)
    exact = all(spec.exact for spec in inputs)
    return total, exact


def validate_merged_pdf(
    path: Path,
    inputs: Sequence[InputSpec],
    *,
    reported_page_count: int | None = None,
) -> ValidationReport:
    """Check a merged PDF against its inputs and find each input's pages.

    Args:
        path: The downloaded merge result.
        inputs: The inspected inputs, in merge order.
        reported_page_count: The `pageCount` that PDF.co reported for the
            job, if it reported one.

    Returns:
        The page count, the page span of every input and notes.

    Raises:
        ValueError: `inputs` is empty.
        ValidationError: The file is missing, is not a whole PDF, cannot be
            read, or its page count does not match the inputs or PDF.co's
            `pageCount`. The message lists each input's expected pages and
            the merged count, and gives the next step.
    """
    if not inputs:
        raise ValueError("inputs must not be empty; pass the inspected inputs")

    check = _Check(path, inputs, reported_page_count)
    check.file_is_whole()
    walk, outline = check.read()
    check.page_count_matches(walk.pages)

    notes = list(walk.notes)
    if walk.stored_count is not None and walk.stored_count != walk.pages:
        notes.append(
            f"the page tree stores /Count {walk.stored_count}, but walking it "
            f"finds {walk.pages} pages; using {walk.pages}"
        )
    spans = _find_spans(check, walk.pages, outline, notes)
    return ValidationReport(
        page_count=walk.pages,
        spans=spans,
        expected_min=check.expected_min,
        exact=check.exact,
        notes=tuple(notes),
    )


class _Check:
    """The checks of one validation, sharing the inputs for error messages."""

    def __init__(
        self,
        path: Path,
        inputs: Sequence[InputSpec],
        reported_page_count: int | None,
    ) -> None:
        self.path = path
        self.inputs = inputs
        self.reported_page_count = reported_page_count
        self.expected_min, self.exact = expected_pages(inputs)

    def file_is_whole(self) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            self.fail("does not exist", None, "Rerun the download or the merge.")
        except OSError as exc:
            self.fail(f"cannot be read ({short_error(exc)})", None, _RETRY_DOWNLOAD)

        if not self.path.is_file():
            self.fail("is not a regular file", None, _RETRY_DOWNLOAD)
        if size == 0:
            self.fail("is empty (0 bytes)", None, _RETRY_DOWNLOAD)

        with self.path.open("rb") as file:
            head = file.read(5)
            file.seek(max(0, size - _EOF_WINDOW))
            tail = file.read()
        if head != b"%PDF-":
            self.fail(
                f"is not a PDF: it starts with {head!r}, not b'%PDF-'",
                None,
                _RETRY_DOWNLOAD,
            )
        if b"%%EOF" not in tail:
            self.fail(
                f"is truncated: no %%EOF marker in its last {_EOF_WINDOW} bytes "
                f"({size} bytes in total)",
                None,
                _RETRY_DOWNLOAD,
            )

    def read(self) -> tuple[PageWalk, list[OutlineItem]]:
        try:
            with open_pdf(self.path) as document:
                walk = walk_pages(document, collect_index=True)
                outline = read_top_outline(document, walk)
        except PdfUnreadableError as exc:
            self.fail(exc.reason, None, _RETRY_DOWNLOAD)
        except (OSError, ValueError) as exc:
            self.fail(f"cannot be read ({short_error(exc)})", None, _RETRY_DOWNLOAD)
        return walk, outline

    def page_count_matches(self, page_count: int) -> None:
        if self.exact and page_count != self.expected_min:
            self.fail(
                f"has {_pages(page_count)}, but its inputs add up to exactly "
                f"{_pages(self.expected_min)}",
                page_count,
                _RETRY_MERGE,
            )
        if not self.exact and page_count < self.expected_min:
            self.fail(
                f"has {_pages(page_count)}, but its inputs add up to at least "
                f"{_pages(self.expected_min)}",
                page_count,
                _RETRY_MERGE,
            )

        reported = self.reported_page_count
        if reported is not None and reported != page_count:
            self.fail(
                f"has {_pages(page_count)}, but PDF.co reported {reported} (pageCount)",
                page_count,
                _RETRY_DOWNLOAD,
            )

    def fail(self, problem: str, page_count: int | None, advice: str) -> NoReturn:
        """Raise `ValidationError` with the inputs and the merged count."""
        lines = [f"Merged PDF {self.path} {problem}.", "Expected pages per input:"]
        lines.extend(
            f"  {source_for_display(spec.source)}: {_expected(spec)}"
            for spec in self.inputs
        )
        total = "exactly" if self.exact else "at least"
        lines.append(f"  total: {total} {_pages(self.expected_min)}")
        merged = _pages(page_count) if page_count is not None else "not readable"
        lines.append(f"Merged file: {merged}.")
        if self.reported_page_count is not None:
            lines.append(f"PDF.co reported: {_pages(self.reported_page_count)}.")
        lines.append(advice)
        raise ValidationError(
            "\n".join(lines),
            path=str(self.path),
            page_count=page_count,
            expected_min=self.expected_min,
            exact=self.exact,
            reported_page_count=self.reported_page_count,
        )


def _find_spans(
    check: _Check, page_count: int, outline: list[OutlineItem], notes: list[str]
) -> tuple[PageSpan, ...]:
    spans = _spans_from_outline(check, page_count, outline, notes)
    if spans is not None:
        return spans
    return _spans_from_counts(check.inputs, page_count, notes)


def _spans_from_outline(
    check: _Check, page_count: int, outline: list[OutlineItem], notes: list[str]
) -> tuple[PageSpan, ...] | None:
    inputs = check.inputs
    if len(outline) != len(inputs):
        return None
    if not all(
        _title_matches(item.title, spec.source)
        for item, spec in zip(outline, inputs, strict=True)
    ):
        # An outline that the inputs brought along can have as many top-level
        # items as there are inputs by chance; only titled bookmarks are trusted.
        return None

    starts = [item.page for item in outline]
    if starts[0] != 0 or not _strictly_increasing(starts):
        notes.append(
            "the outline has one bookmark per input, but their pages are not in "
            "input order; page spans were computed from page counts instead"
        )
        return None

    firsts = [start + 1 for start in starts if start is not None]
    lasts = [*(first - 1 for first in firsts[1:]), page_count]
    spans = tuple(
        PageSpan(source=spec.source, first_page=first, last_page=last)
        for spec, first, last in zip(inputs, firsts, lasts, strict=True)
    )
    for spec, span in zip(inputs, spans, strict=True):
        if span.pages < spec.min_pages or (spec.exact and span.pages != spec.min_pages):
            check.fail(
                f"places {source_for_display(spec.source)} at pages {span.first_page}-"
                f"{span.last_page} ({_pages(span.pages)}) according to its "
                f"bookmarks, but that input has {_expected(spec)}",
                page_count,
                _RETRY_MERGE,
            )
    return spans


def _strictly_increasing(starts: list[int | None]) -> bool:
    previous = -1
    for start in starts:
        if start is None or start <= previous:
            return False
        previous = start
    return True


def _title_matches(title: str, source: str) -> bool:
    name = _file_name(source)
    candidates = {name.casefold(), PurePosixPath(name).stem.casefold()}
    return title.strip().casefold() in candidates


def _file_name(source: str) -> str:
    parts = urlsplit(source)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return unquote(PurePosixPath(parts.path).name)
    return Path(source).name


def _spans_from_counts(
    inputs: Sequence[InputSpec], page_count: int, notes: list[str]
) -> tuple[PageSpan, ...]:
    inexact = [index for index, spec in enumerate(inputs) if not spec.exact]
    remainder = page_count - sum(spec.min_pages for spec in inputs)
    sizes = [spec.min_pages for spec in inputs]
    if inexact:
        sizes[inexact[-1]] += remainder
    if len(inexact) > 1 and remainder > 0:
        names = ", ".join(source_for_display(inputs[index].source) for index in inexact)
        notes.append(
            f"page spans of the converted inputs ({names}) are estimates: each is "
            f"given its minimum and the last one the {_pages(remainder)} left "
            "over; merge with the GenerateBookmarks profile to get exact spans"
        )

    spans = []
    first = 1
    for spec, size in zip(inputs, sizes, strict=True):
        spans.append(
            PageSpan(source=spec.source, first_page=first, last_page=first + size - 1)
        )
        first += size
    return tuple(spans)


def keep_rejected(path: Path, output: Path) -> Path:
    """Move a download that failed validation next to the intended output.

    The file gets a name such as `out.FAILED-VALIDATION.pdf` for an output
    `out.pdf`, or `out.FAILED-VALIDATION-2.pdf` when that name is taken. It
    never lands at `output` itself, so it is never taken for a valid result.

    Args:
        path: The rejected download.
        output: Where the valid result would have gone.

    Returns:
        The new path of the rejected file.

    Raises:
        FileNotFoundError: `path` does not exist.
        FileExistsError: All candidate names are taken.
    """
    suffix = output.suffix or ".pdf"
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    for attempt in range(1, _MAX_KEEP_ATTEMPTS + 1):
        marker = REJECTED_MARKER if attempt == 1 else f"{REJECTED_MARKER}-{attempt}"
        candidate = output.with_name(f"{stem}.{marker}{suffix}")
        if _reserve(candidate):
            _move(path, candidate)
            return candidate
    raise FileExistsError(
        f"cannot keep {path}: {_MAX_KEEP_ATTEMPTS} names like "
        f"{stem}.{REJECTED_MARKER}{suffix} are taken in {output.parent}"
    )


def _reserve(candidate: Path) -> bool:
    try:
        descriptor = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    os.close(descriptor)
    return True


def _move(path: Path, target: Path) -> None:
    try:
        os.replace(path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            target.unlink(missing_ok=True)
            raise
        shutil.move(os.fspath(path), os.fspath(target))


def _expected(spec: InputSpec) -> str:
    return (
        _pages(spec.min_pages) if spec.exact else f"at least {_pages(spec.min_pages)}"
    )


def _pages(count: int) -> str:
    return f"{count} page" if count == 1 else f"{count} pages"
