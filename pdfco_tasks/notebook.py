"""Merge documents from a Jupyter notebook (or any Python prompt) with one call.

`merge()` runs the `merge_documents` flow, draws its progress in the cell,
and returns a `NotebookMergeResult` that Jupyter shows as a summary table.
`load_credentials()` and `save_credentials()` work at notebook top level,
where Prefect's own `Block.load` and `Block.save` return coroutines.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pdfco_tasks.exceptions import ConfigurationError, PdfcoError, ValidationError
from pdfco_tasks.models import PageSpan

if TYPE_CHECKING:
    from rich.console import RenderableType

    from pdfco_tasks.credentials import PdfcoCredentials
    from pdfco_tasks.sandbox import Sandbox

__all__ = [
    "SANDBOX_API_KEY",
    "NotebookMergeResult",
    "aload_credentials",
    "asave_credentials",
    "load_credentials",
    "merge",
    "save_credentials",
    "show_progress",
]

SANDBOX_API_KEY = "notebook-sandbox-key"
"""The API key of the sandbox that `merge(..., sandbox=True)` starts."""

_GREEN = "#1a7f37"
_RED = "#c62828"


@dataclass(frozen=True)
class NotebookMergeResult:
    """The outcome of `merge()`, shown in Jupyter as a summary table.

    A successful merge has `ok=True` and every field of the flow's result. A
    merge that failed under `raise_on_failure=False` has `ok=False`, the
    error in `error` and `exception`, and None in the fields it never reached.

    Attributes:
        ok: Whether the merged PDF was written and validated.
        sources: The inputs, in merge order, as passed to `merge()`.
        output: Path of the merged PDF (absolute on success).
        page_count: Pages in the output.
        spans: Output pages per input, in input order.
        job_id: The PDF.co job id.
        credits_used: Credits charged by all calls of this merge.
        remaining_credits: Balance after the last call, when PDF.co reported it.
        durations: Seconds per step (`upload`, `merge`, `download`, `validate`,
            `total`).
        resumed: Whether an earlier job was resumed instead of submitting.
        error: The failure message.
        error_type: The exception class name, such as `ValidationError`.
        exception: The exception itself, for `raise_for_error()`.
    """

    ok: bool
    sources: tuple[str, ...]
    output: str
    page_count: int | None = None
    spans: tuple[PageSpan, ...] = ()
    job_id: str | None = None
    credits_used: int | None = None
    remaining_credits: int | None = None
    durations: Mapping[str, float] = field(default_factory=dict)
    resumed: bool = False
    error: str | None = None
    error_type: str | None = None
    exception: PdfcoError | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_flow_result(
        cls, result: Mapping[str, Any], sources: Iterable[str]
    ) -> NotebookMergeResult:
        """Build a successful result from `merge_documents`' return value."""
        return cls(
            ok=True,
            sources=tuple(sources),
            output=str(result["output"]),
            page_count=int(result["page_count"]),
            spans=tuple(PageSpan(**span) for span in result["spans"]),
            job_id=str(result["job_id"]),
            credits_used=int(result["credits_used"]),
            remaining_credits=result.get("remaining_credits"),
            durations=dict(result.get("durations") or {}),
            resumed=bool(result.get("resumed", False)),
        )

    @classmethod
    def from_error(
        cls, exc: PdfcoError, sources: Iterable[str], output: str
    ) -> NotebookMergeResult:
        """Build a failed result that carries `exc`."""
        return cls(
            ok=False,
            sources=tuple(sources),
            output=output,
            error=exc.message,
            error_type=type(exc).__name__,
            exception=exc,
        )

    @property
    def validated(self) -> bool:
        """Whether the merge succeeded and its spans tile pages 1 to `page_count`.

        The flow has already checked the page count against the inputs. This
        also checks that the spans neither overlap nor leave a gap.
        """
        if not self.ok or not self.spans or self.page_count is None:
            return False
        expected_first = 1
        for span in self.spans:
            if span.first_page != expected_first or span.last_page < span.first_page:
                return False
            expected_first = span.last_page + 1
        return expected_first - 1 == self.page_count

    @property
    def verdict(self) -> str:
        """One sentence on whether the output is whole, or why the merge failed."""
        if self.ok and self.validated:
            terms = " + ".join(str(span.pages) for span in self.spans)
            return f"Validated: {self.page_count} pages = sum of inputs ({terms})."
        if self.ok:
            covered = sum(span.pages for span in self.spans)
            return (
                f"Not validated: the page spans of the inputs ({covered} pages) do "
                f"not cover the {self.page_count} output pages without gaps."
            )
        if self.error_type == ValidationError.__name__:
            return f"Not validated: {self.error}"
        return f"Failed ({self.error_type}): {self.error}"

    def raise_for_error(self) -> None:
        """Raise the stored exception when the merge failed.

        Raises:
            PdfcoError: The failure, when `ok` is False.
        """
        if self.exception is not None:
            raise self.exception

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-friendly values, without `exception`."""
        return {
            "ok": self.ok,
            "sources": list(self.sources),
            "output": self.output,
            "page_count": self.page_count,
            "spans": [span.to_dict() for span in self.spans],
            "job_id": self.job_id,
            "credits_used": self.credits_used,
            "remaining_credits": self.remaining_credits,
            "durations": dict(self.durations),
            "resumed": self.resumed,
            "error": self.error,
            "error_type": self.error_type,
            "verdict": self.verdict,
        }

    def _repr_html_(self) -> str:
        if self.ok:
            return _success_html(self)
        return _failure_html(self)

    def __rich__(self) -> RenderableType:
        from rich.panel import Panel
        from rich.text import Text

        if not self.ok:
            return Panel(
                Text(str(self.error), style="red"),
                title=f"Merge failed: {self.error_type}",
                title_align="left",
                border_style="red",
            )

        from pdfco_tasks.display import summary_table

        table = summary_table(self.to_dict())
        style = "green" if self.validated else "bold red"
        table.caption = Text.assemble(
            str(table.caption or ""), "\n", (self.verdict, style)
        )
        return table


def merge(
    sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    credentials: PdfcoCredentials | str | None = None,
    sandbox: bool | Sandbox = False,
    overwrite: bool = False,
    bookmarks: bool = True,
    progress: bool = True,
    raise_on_failure: bool = True,
) -> NotebookMergeResult:
    """Merge documents into one validated PDF, with progress bars in the cell.

    The call runs the `merge_documents` Prefect flow, so the run also appears
    in the Prefect UI. It works in a plain script and in a Jupyter cell, where
    the kernel's event loop is already running.

    Args:
        sources: One path or URL, or several in merge order: PDF, DOC, DOCX,
            XLS, XLSX, RTF, TXT, PNG, JPEG, GIF, BMP, TIFF or ZIP.
        output: Path of the merged PDF.
        credentials: A `PdfcoCredentials` block, the name of a saved one, or
            None to read PDFCO_API_KEY and PDFCO_BASE_URL.
        sandbox: True to start a local PDF.co sandbox for this call (no key,
            no credits), or a running `Sandbox` to share among several calls.
        overwrite: Replace an existing `output`.
        bookmarks: Add one bookmark per input to the result.
        progress: Show progress bars while the merge runs. Prefect's console
            logs below WARNING are then held back, but the Prefect UI still
            has them.
        raise_on_failure: Raise the library error when the merge fails. When
            False, every `PdfcoError`, including the `ConfigurationError`s
            below, becomes a result with `ok=False` that shows the error in red.

    Returns:
        The result with `output`, `page_count`, `spans`, `job_id`,
        `credits_used` and the validation `verdict`. Jupyter displays it as a
        table.

    Raises:
        ConfigurationError: Both `credentials` and `sandbox` were given, or no
            saved block has the name `credentials`.
        PdfcoError: The merge failed, for example `PreflightError` for a bad
            input or `ValidationError` for a result with missing pages. In
            IPython the error is shown as one message, and `%debug` or
            `sys.last_traceback` still reach the full traceback.

    Example:
        ```python
        from pdfco_tasks import merge

        result = merge(
            ["report.pdf", "letter.docx", "chart.png"], "out/merged.pdf", sandbox=True
        )
        result.page_count, result.spans
        ```
    """
    source_list = _source_list(sources)
    target = os.fspath(output)

    from flows.merge_documents import merge_documents
    from pdfco_tasks._notebook_output import shorten_ipython_traceback

    try:
        with _credentials_for(credentials, sandbox) as block, show_progress(progress):
            result = merge_documents(
                sources=source_list,
                output=target,
                credentials=block,
                overwrite=overwrite,
                bookmarks=bookmarks,
                create_artifacts=True,
            )
    except PdfcoError as exc:
        if raise_on_failure:
            shorten_ipython_traceback(exc)
            raise
        return NotebookMergeResult.from_error(exc, source_list, target)

    return NotebookMergeResult.from_flow_result(result, source_list)


@contextmanager
def show_progress(enabled: bool = True) -> Iterator[None]:
    """Show progress bars for the merges that run inside the `with` block.

    `merge()` does this by itself. Use it around the flows, such as
    `merge_batches` or `merge_folder`, to get the same display in a notebook
    cell or a terminal. Meanwhile Prefect's console logs leave out the
    tracebacks of pdfco-tasks errors, which still reach the caller, and, when
    `enabled`, hold back records below WARNING. The Prefect UI keeps every
    record whole.

    Args:
        enabled: Show the bars. False keeps only the shortened tracebacks, so
            a caller's own progress flag can be passed through.

    Example:
        ```python
        from flows.merge_batches import merge_batches
        from pdfco_tasks.notebook import show_progress

        with show_progress():
            summary = merge_batches(batches, credentials="BLOCK_NAME")
        ```
    """
    from pdfco_tasks._notebook_output import prefect_console, progress_display

    with prefect_console(quiet=enabled), progress_display(enabled):
        yield


def load_credentials(name: str) -> PdfcoCredentials:
    """Load a saved `PdfcoCredentials` block, also at notebook top level.

    Outside a flow run, Prefect 3's `Block.load` returns a coroutine instead
    of a block whenever an event loop runs in the calling thread, as it does
    in every Jupyter cell. Without `await`, the caller then gets no block.
    This function forces Prefect's synchronous path with `_sync=True`, so the
    same line works in a script, in a notebook cell and inside a flow.

    Args:
        name: The block document name, as given to `save_credentials`.

    Returns:
        The loaded block.

    Raises:
        ConfigurationError: No `PdfcoCredentials` block is saved under `name`.

    Example:
        ```python
        from pdfco_tasks.notebook import load_credentials

        credentials = load_credentials("BLOCK_NAME")
        ```
    """
    from pdfco_tasks.credentials import PdfcoCredentials

    try:
        block = PdfcoCredentials.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError as exc:
        raise _block_not_found(name) from exc
    assert isinstance(block, PdfcoCredentials)
    return block


async def aload_credentials(name: str) -> PdfcoCredentials:
    """Load a saved `PdfcoCredentials` block from async code.

    Args:
        name: The block document name.

    Returns:
        The loaded block.

    Raises:
        ConfigurationError: No `PdfcoCredentials` block is saved under `name`.
    """
    from pdfco_tasks.credentials import PdfcoCredentials

    try:
        return await PdfcoCredentials.aload(name)
    except ValueError as exc:
        raise _block_not_found(name) from exc


def save_credentials(
    block: PdfcoCredentials, name: str, overwrite: bool = True
) -> UUID:
    """Save a `PdfcoCredentials` block, also at notebook top level.

    At notebook top level Prefect's `Block.save` returns a coroutine, so a
    plain `block.save(name)` without `await` saves nothing and a later load
    fails. This function forces the synchronous path with `_sync=True`.
    Saving also registers the block type with the Prefect API.

    Args:
        block: The block to save.
        name: The block document name: lowercase letters, digits and dashes.
        overwrite: Replace a block already saved under `name`.

    Returns:
        The id of the saved block document.

    Raises:
        ValueError: `name` is taken and `overwrite` is False, or it is not a
            valid block name.

    Example:
        ```python
        from pydantic import SecretStr
        from pdfco_tasks import PdfcoCredentials
        from pdfco_tasks.notebook import save_credentials

        save_credentials(PdfcoCredentials(api_key=SecretStr("KEY")), "BLOCK_NAME")
        ```
    """
    document_id = block.save(name, overwrite=overwrite, _sync=True)  # type: ignore[call-arg]
    assert isinstance(document_id, UUID)
    return document_id


async def asave_credentials(
    block: PdfcoCredentials, name: str, overwrite: bool = True
) -> UUID:
    """Save a `PdfcoCredentials` block from async code.

    Args:
        block: The block to save.
        name: The block document name.
        overwrite: Replace a block already saved under `name`.

    Returns:
        The id of the saved block document.
    """
    return await block.asave(name, overwrite=overwrite)


def _block_not_found(name: str) -> ConfigurationError:
    return ConfigurationError(
        f"No PdfcoCredentials block is saved under the name {name!r}. Save one "
        "with pdfco_tasks.notebook.save_credentials(block, name), or list the "
        "saved ones with `prefect block ls`.",
        block_name=name,
    )


def _source_list(
    sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[str]:
    if isinstance(sources, (str, os.PathLike)):
        return [os.fspath(sources)]
    return [os.fspath(source) for source in sources]


@contextmanager
def _credentials_for(
    credentials: PdfcoCredentials | str | None, sandbox: bool | Sandbox
) -> Iterator[PdfcoCredentials | None]:
    """Yield the block to merge with, running a sandbox around it when asked."""
    if sandbox is False:
        if isinstance(credentials, str):
            yield load_credentials(credentials)
        else:
            yield credentials
        return

    if credentials is not None:
        raise ConfigurationError(
            "Pass either credentials or sandbox to merge(), not both, because the "
            "sandbox brings its own API key and base URL."
        )

    from pdfco_tasks.sandbox import Sandbox

    if isinstance(sandbox, Sandbox):
        yield _sandbox_credentials(sandbox)
        return

    with Sandbox(api_keys=(SANDBOX_API_KEY,)) as started:
        yield _sandbox_credentials(started)


def _sandbox_credentials(sandbox: Sandbox) -> PdfcoCredentials:
    from pydantic import SecretStr

    from pdfco_tasks.credentials import PdfcoCredentials

    return PdfcoCredentials(
        api_key=SecretStr(sandbox.api_key), base_url=sandbox.base_url
    )


def _display_source(source: str) -> str:
    """Return the input as shown to the user: a URL loses its query string."""
    return source.split("?", 1)[0]


def _success_html(result: NotebookMergeResult) -> str:
    rows = "".join(
        "<tr>"
        f"<td style='text-align:right'>{index}</td>"
        f"<td style='text-align:left'><code>{_escape(_display_source(span.source))}"
        "</code></td>"
        f"<td style='text-align:right'>{span.pages}</td>"
        f"<td style='text-align:right'>{span.first_page}&ndash;{span.last_page}</td>"
        "</tr>"
        for index, span in enumerate(result.spans, start=1)
    )
    colour = _GREEN if result.validated else _RED
    remaining = result.remaining_credits
    total = result.durations.get("total")
    facts = [
        f"Job <code>{_escape(str(result.job_id))}</code>"
        + (" (resumed)" if result.resumed else ""),
        f"{result.credits_used} credits used, "
        f"{'unknown' if remaining is None else remaining} remaining",
    ]
    if total is not None:
        facts.append(f"{total:.1f} s")
    return (
        "<div class='pdfco-merge-result'>"
        "<table>"
        "<caption style='text-align:left'>"
        f"Merged {len(result.sources)} inputs into "
        f"<code>{_escape(result.output)}</code></caption>"
        "<thead><tr><th>#</th><th style='text-align:left'>Input</th>"
        "<th>Pages</th><th>Output pages</th></tr></thead>"
        f"<tbody>{rows}</tbody>"
        "</table>"
        f"<p style='color:{colour};font-weight:bold'>{_escape(result.verdict)}</p>"
        f"<p>{' · '.join(facts)}</p>"
        "</div>"
    )


def _failure_html(result: NotebookMergeResult) -> str:
    inputs = "".join(
        f"<li><code>{_escape(_display_source(source))}</code></li>"
        for source in result.sources
    )
    return (
        f"<div class='pdfco-merge-result' style='color:{_RED}'>"
        f"<p style='font-weight:bold'>Merge failed: {_escape(str(result.error_type))}"
        "</p>"
        f"<pre style='white-space:pre-wrap;color:{_RED}'>"
        f"{_escape(str(result.error))}</pre>"
        f"<p>Nothing was written to <code>{_escape(result.output)}</code>. "
        "Inputs:</p>"
        f"<ol>{inputs}</ol>"
        "</div>"
    )


def _escape(text: str) -> str:
    return html.escape(text, quote=True)
