"""What `pdfco_tasks.notebook.merge()` prints while it runs.

Progress bars go to the terminal or into the notebook cell. Prefect's console
logs are trimmed for the duration of the call. A failure raised into IPython
is shown as its message instead of a wall of stack frames.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from pdfco_tasks.display import MergeProgress
from pdfco_tasks.exceptions import PdfcoError

__all__ = ["prefect_console", "progress_display", "shorten_ipython_traceback"]

REFRESH_SECONDS = 0.5
PROGRESS_WIDTH = 100


@contextmanager
def progress_display(enabled: bool) -> Iterator[None]:
    """Show merge progress bars while the `with` block runs.

    In Jupyter the bars are redrawn in the cell's output. Elsewhere rich draws
    them on standard error.
    """
    if not enabled:
        yield
        return

    from rich.console import Console

    if Console().is_jupyter:
        with JupyterProgress():
            yield
    else:
        with MergeProgress(Console(stderr=True)):
            yield


class JupyterProgress:
    """Draw `MergeProgress` bars in a notebook cell and redraw them in place.

    rich's live display needs ipywidgets to update a Jupyter output, and
    pdfco-tasks does not depend on it. This class renders the bars to HTML and
    replaces one output by its `display_id` instead, which Jupyter front ends
    and nbclient support without extensions.
    """

    def __init__(self) -> None:
        from rich.console import Console

        # Rich's live display writes to this discarded buffer, and `bundle`
        # renders the bars again for the cell.
        unused = Console(file=io.StringIO(), force_terminal=False, force_jupyter=False)
        self._bars = MergeProgress(unused)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._refresh_until_stopped,
            name="pdfco-notebook-progress",
            daemon=True,
        )
        self._handle: Any = None

    def __enter__(self) -> JupyterProgress:
        from IPython.display import display

        self._bars.__enter__()
        self._handle = display(  # type: ignore[no-untyped-call]
            self.bundle(), raw=True, display_id=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._bars.__exit__(exc_type, exc, traceback)
        self._handle.update(self.bundle(), raw=True)

    def bundle(self) -> dict[str, str]:
        """Render the bars as a Jupyter MIME bundle (HTML and plain text)."""
        from rich.console import Console

        console = Console(
            record=True,
            file=io.StringIO(),
            width=PROGRESS_WIDTH,
            color_system="truecolor",
            force_jupyter=False,
        )
        console.print(self._bars)
        text = console.export_text(clear=False)
        markup = console.export_html(
            inline_styles=True,
            code_format='<pre style="line-height:1.3;margin:0">{code}</pre>',
        )
        return {"text/plain": text, "text/html": markup}

    def _refresh_until_stopped(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            self._handle.update(self.bundle(), raw=True)


class NoTracebackFormatter(logging.Formatter):
    """Format records like `inner`, leaving out the traceback of a `PdfcoError`."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, PdfcoError):
            return self.inner.format(record)

        # Handlers format the same record one after another in this thread, so
        # restoring it here hands the API handler the full traceback.
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text = saved


@contextmanager
def prefect_console(quiet: bool) -> Iterator[None]:
    """Trim what Prefect logs to the console while the `with` block runs.

    Prefect logs a failed task and flow with the whole traceback, although the
    caller of `merge()` receives the same error. For `PdfcoError`s the console
    gets the one-line message instead. With `quiet`, records below WARNING stay
    off the console too, so the progress bars are not pushed out of view. Only
    Prefect's console handlers change: the records that reach the Prefect API,
    and its UI, are complete.

    Args:
        quiet: Also hold back records below WARNING.
    """
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    ensure_logging_setup()
    changed: list[tuple[logging.Handler, logging.Formatter | None, int]] = []
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, PrefectConsoleHandler):
            continue
        if isinstance(handler.formatter, NoTracebackFormatter):
            continue  # a merge() running in another thread changed it already
        changed.append((handler, handler.formatter, handler.level))
        handler.setFormatter(NoTracebackFormatter(handler.formatter))
        if quiet:
            handler.setLevel(max(handler.level, logging.WARNING))
    try:
        yield
    finally:
        for handler, formatter, level in changed:
            handler.setFormatter(formatter)
            handler.setLevel(level)


def shorten_ipython_traceback(exc: PdfcoError) -> None:
    """Make IPython show `exc` as its message, without the frames.

    IPython renders an exception through its `_render_traceback_` method when
    it has one. The traceback stays on the exception, so `%debug` and
    `sys.last_traceback` still reach every frame. Plain Python ignores the
    method and prints the usual traceback.
    """

    def render() -> list[str]:
        return [
            f"\x1b[1;31m{type(exc).__name__}\x1b[0m: {exc.message}",
            "",
            "Run %debug to inspect the frames, or pass raise_on_failure=False "
            "to get a result with ok=False instead.",
        ]

    exc._render_traceback_ = render  # type: ignore[attr-defined]
