"""`pdfco-merge`: merge documents into one PDF from the command line.

Exit codes: 0 merged and validated; 1 PDF.co or the network failed; 2 bad
arguments, settings or inputs (nothing was spent); 3 the result failed
validation; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pdfco_tasks.credentials import PdfcoCredentials

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INVALID_RESULT = 3
EXIT_INTERRUPTED = 130

SANDBOX_API_KEY = "sandbox-key"


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line."""
    parser = argparse.ArgumentParser(
        prog="pdfco-merge",
        description=(
            "Merge documents (PDF, DOC, DOCX, XLS, XLSX, RTF, TXT, images, ZIP) into "
            "one PDF through PDF.co, and check that no page went missing."
        ),
    )
    parser.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="local file or http(s) URL, in order",
    )
    parser.add_argument(
        "-o", "--output", required=True, help="path of the merged PDF to write"
    )

    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--sandbox",
        action="store_true",
        help="merge against a local PDF.co sandbox started in this process; "
        "no API key needed, no credits spent",
    )
    target.add_argument(
        "--base-url",
        help="PDF.co API root including /v1 (default: PDFCO_BASE_URL or "
        "https://api.pdf.co/v1); the key comes from PDFCO_API_KEY",
    )
    target.add_argument(
        "--credentials", metavar="BLOCK", help="name of a saved PdfcoCredentials block"
    )

    parser.add_argument(
        "--overwrite", action="store_true", help="replace OUTPUT if it exists"
    )
    parser.add_argument(
        "--no-bookmarks",
        action="store_true",
        help="do not add one bookmark per input to the result",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show Prefect's run logs"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    args = build_parser().parse_args(argv)
    _quiet_prefect(args.verbose)

    from rich.console import Console

    # soft_wrap keeps each message on one line in logs and pipes, where rich
    # would otherwise wrap at 80 columns.
    console = Console(stderr=True, soft_wrap=True)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        return _run(args, console)
    except KeyboardInterrupt:
        _print_error(console, _INTERRUPTED)
        return EXIT_INTERRUPTED


_INTERRUPTED = (
    "Interrupted. A submitted PDF.co job is remembered: run the same command "
    "again to resume it."
)
_GRACE_SECONDS = 10.0


def _interrupt(signum: int, frame: object) -> None:
    """Raise KeyboardInterrupt, and exit hard if the run does not end soon.

    Prefect reacts to the interrupt by recording the flow run as crashed. When
    the temporary Prefect server it would record that on has already died of
    the same Ctrl-C, its client retries for minutes, so a watchdog ends the
    process after a grace period, and a second Ctrl-C ends it at once.
    """
    signal.signal(signal.SIGINT, _exit_now)
    watchdog = threading.Timer(_GRACE_SECONDS, _exit_now)
    watchdog.daemon = True
    watchdog.start()
    raise KeyboardInterrupt


def _exit_now(*_: object) -> None:
    sys.stderr.write(f"pdfco-merge: {_INTERRUPTED}\n")
    sys.stderr.flush()
    _stop_children()
    os._exit(EXIT_INTERRUPTED)


def _stop_children() -> None:
    """Send SIGTERM to this process's children, such as a temporary server.

    `os._exit` skips the handlers that would stop them. Children are found in
    /proc, so elsewhere than Linux nothing is sent.
    """
    own = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == own:
            with contextlib.suppress(OSError):
                os.kill(int(stat.parent.name), signal.SIGTERM)


def _quiet_prefect(verbose: bool) -> None:
    """Keep Prefect's console output out of the progress display.

    Only the console handler is silenced: run logs still reach the Prefect
    API and its UI. Prefect reads these settings when it is first imported,
    so this runs before any Prefect import. Values set by the user win.
    """
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_COLORS", "false")


def _run(args: argparse.Namespace, console: Any) -> int:
    from pdfco_tasks.display import MergeProgress, render_summary
    from pdfco_tasks.exceptions import (
        ConfigurationError,
        PdfcoError,
        PreflightError,
        ValidationError,
    )

    with ExitStack() as stack:
        try:
            credentials = stack.enter_context(_credentials(args))
            from flows.merge_documents import merge_documents

            progress = MergeProgress(console) if console.is_terminal else _NoProgress()
            with progress:
                result = merge_documents(
                    sources=list(args.sources),
                    output=args.output,
                    credentials=credentials,
                    overwrite=args.overwrite,
                    bookmarks=not args.no_bookmarks,
                    create_artifacts=True,
                )
        except (PreflightError, ConfigurationError) as exc:
            _print_error(console, exc.message)
            return EXIT_BAD_INPUT
        except ValidationError as exc:
            _print_error(console, exc.message)
            return EXIT_INVALID_RESULT
        except PdfcoError as exc:
            _print_error(console, exc.message)
            return EXIT_FAILED

    render_summary(result, console=None, elapsed=progress.elapsed)
    return EXIT_OK


def _print_error(console: Any, message: str) -> None:
    # File names may contain brackets, which rich would read as markup.
    console.print(f"pdfco-merge: {message}", style="red", markup=False, highlight=False)


class _NoProgress:
    """Stands in for the progress bars when stderr is not a terminal."""

    elapsed = 0.0

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


@contextmanager
def _credentials(args: argparse.Namespace) -> Iterator[PdfcoCredentials | str]:
    from pydantic import SecretStr

    from pdfco_tasks.credentials import PdfcoCredentials

    if args.credentials:
        yield args.credentials
        return

    if not args.sandbox:
        block = PdfcoCredentials(base_url=args.base_url)
        block.get_settings()  # fails early and clearly when no key is set
        yield block
        return

    from pdfco_tasks.sandbox import Sandbox

    with Sandbox(api_keys=(SANDBOX_API_KEY,)) as sandbox:
        yield PdfcoCredentials(
            api_key=SecretStr(SANDBOX_API_KEY), base_url=sandbox.base_url
        )


if __name__ == "__main__":
    sys.exit(main())
