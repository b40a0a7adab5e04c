"""Rich progress bars and summary tables for the command line and notebooks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from pdfco_tasks.progress import ProgressEvent, subscribe

__all__ = ["MergeProgress", "render_summary", "summary_table"]

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
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[status]}"),
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
            label = f"{_STAGE_LABELS[event.stage]} {event.subject}".strip()
            task_id = self._progress.add_task(label, total=event.total, status="")
            self._tasks[key] = task_id
        self._progress.update(
            task_id, completed=event.done, total=event.total, status=event.message
        )
        if event.finished:
            total = event.total if event.total is not None else max(event.done, 1)
            self._progress.update(task_id, completed=total, total=total)


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
            _short(span["source"]),
            str(pages),
            f"{span['first_page']}–{span['last_page']}",
        )
    remaining = result.get("remaining_credits")
    table.caption = (
        f"{result['page_count']} pages · job {result['job_id']}"
        f"{' (resumed)' if result.get('resumed') else ''} · "
        f"{result['credits_used']} credits used, "
        f"{'unknown' if remaining is None else remaining} remaining"
    )
    return table


def render_summary(
    result: Mapping[str, Any], console: Console | None = None, elapsed: float = 0.0
) -> None:
    """Print the summary table, and the total time when given."""
    console = console or Console()
    console.print(summary_table(result))
    if elapsed:
        console.print(f"Done in {elapsed:.1f} s.")


def _short(source: str) -> str:
    return source.split("?", 1)[0]
