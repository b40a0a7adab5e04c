"""Rich progress bars and summary tables for the command line and notebooks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from pdfco_tasks.inspection import source_for_display
from pdfco_tasks.progress import ProgressEvent, subscribe

__all__ = ["MergeProgress", "render_summary", "summary_line", "summary_table"]

_STAGE_LABELS = {
    "inspect": "Inspect",
    "upload": "Upload",
    "submit": "Submit",
    "poll": "Merge on PDF.co",
    "download": "Download",
    "validate": "Validate",
}


class MergeProgress:
    """Show one progress bar per merge step while the `with` block runs.

    Progress events come from the merge tasks through `pdfco_tasks.progress`.
    In Jupyter, rich renders the bars as a live output cell.
    """

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[tuple[str, str], TaskID] = {}
        self._subscription = subscribe(self._on_event)
        self._started = 0.0
        self.elapsed = 0.0

    def __enter__(self) -> MergeProgress:
        self._started = time.monotonic()
        self._progress.start()
        self._subscription.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._subscription.__exit__(exc_type, exc, traceback)
        self._progress.stop()
        self.elapsed = time.monotonic() - self._started

    def __rich__(self) -> Progress:
        """Return the bars as a renderable, to draw them on another console."""
        return self._progress

    def _on_event(self, event: ProgressEvent) -> None:
        key = (event.stage, event.subject)
        task_id = self._tasks.get(key)
        if task_id is None:
            label = _STAGE_LABELS[event.stage]
            if event.stage in ("upload", "download"):
                label = f"{label} {_plain(event.subject)}"
            task_id = self._progress.add_task(label, total=event.total, detail="")
            self._tasks[key] = task_id

        total = event.total
        if event.finished and total is None:
            total = max(event.done, 1.0)
        completed = total if event.finished and total is not None else event.done
        self._progress.update(
            task_id, completed=completed, total=total, detail=_detail(event)
        )


def summary_table(result: Mapping[str, Any]) -> Table:
    """Build a table of inputs and their output pages from a merge result."""
    table = Table(title=f"Merged into {result['output']}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Input")
    table.add_column("Pages", justify="right")
    table.add_column("Output pages", justify="right")
    for index, span in enumerate(result["spans"], start=1):
        pages = span["last_page"] - span["first_page"] + 1
        table.add_row(
            str(index),
            Text(_printable(source_for_display(span["source"]))),
            str(pages),
            _page_range(span["first_page"], span["last_page"]),
        )
    table.caption = summary_line(result)
    return table


def summary_line(result: Mapping[str, Any]) -> str:
    """Describe pages, job and credits of a merge result in one line."""
    remaining = result.get("remaining_credits")
    resumed = " (resumed)" if result.get("resumed") else ""
    balance = "unknown" if remaining is None else remaining
    return (
        f"{result['page_count']} pages · job {result['job_id']}{resumed} · "
        f"{result['credits_used']} credits used, {balance} remaining"
    )


def _page_range(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def render_summary(
    result: Mapping[str, Any], console: Console | None = None, elapsed: float = 0.0
) -> None:
    """Print the summary table, and the total time when given."""
    console = console or Console()
    table = summary_table(result)
    table.title = None
    table.caption = None
    console.print(
        f"Merged into {result['output']}", markup=False, highlight=False, soft_wrap=True
    )
    console.print(table)
    console.print(summary_line(result), markup=False, highlight=False, soft_wrap=True)
    for note in result.get("notes") or ():
        console.print(f"Note: {note}", style="yellow", markup=False, highlight=False)
    if elapsed:
        console.print(f"Done in {elapsed:.1f} s.")


def _detail(event: ProgressEvent) -> str:
    if event.stage in ("upload", "download"):
        return _size(event.done if event.finished else event.total or event.done)
    if event.stage == "poll":
        job = _plain(event.subject)
        return f"{_plain(event.message)} after {event.done:.1f} s (job {job})"
    if event.stage in ("inspect", "validate"):
        noun = "inputs" if event.stage == "inspect" else "pages"
        return f"{event.done:.0f} {noun}" if event.finished else event.message
    return event.message


def _size(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def _printable(text: str) -> str:
    """Replace control characters, such as ANSI escapes, that a name may carry."""
    return "".join(char if char.isprintable() else "?" for char in text)


def _plain(text: str) -> str:
    """Make a file name safe to show in a rich markup string."""
    return escape(_printable(text))
