"""Split large merges into chunks and join the chunk results locally.

PDF.co rejects a merge2 request whose inputs add up to more than 2 GB, and its
support pages advise batches of 150 to 200 files to stay under the async time
limit. A larger merge therefore runs as several chunk merges in parallel. The
verified chunk results are then joined with pypdf, which costs no credits and
keeps each chunk's bookmarks, so the page spans of every input stay exact.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pypdf import PdfReader, PdfWriter

from pdfco_tasks._files import give_default_mode
from pdfco_tasks.inspection import MAX_TOTAL_BYTES
from pdfco_tasks.models import InputSpec

__all__ = ["DEFAULT_CHUNK_SIZE", "join_pdfs", "plan_chunks"]

DEFAULT_CHUNK_SIZE = 150


def plan_chunks(
    specs: Sequence[InputSpec],
    *,
    max_inputs: int = DEFAULT_CHUNK_SIZE,
    max_bytes: int = MAX_TOTAL_BYTES,
) -> list[list[InputSpec]]:
    """Split inputs, in order, into chunks under both limits.

    Args:
        specs: Inspected inputs in merge order.
        max_inputs: Maximum number of inputs in one chunk.
        max_bytes: Maximum bytes of local inputs in one chunk; URL inputs count 0
            because their size is unknown before PDF.co fetches them.

    Returns:
        Consecutive groups whose concatenation is `specs`; one group when
        everything fits in a single merge.

    Raises:
        ValueError: When a limit is not positive.

    Example:
        >>> from pdfco_tasks.models import InputSpec
        >>> specs = [InputSpec(f"{n}.pdf", "pdf", 10, "", 1, True) for n in range(5)]
        >>> [len(chunk) for chunk in plan_chunks(specs, max_inputs=2)]
        [2, 2, 1]
    """
    if max_inputs < 1:
        raise ValueError(f"max_inputs must be at least 1, not {max_inputs!r}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, not {max_bytes!r}")

    chunks: list[list[InputSpec]] = []
    current: list[InputSpec] = []
    current_bytes = 0
    for spec in specs:
        too_many = len(current) >= max_inputs
        too_big = current and current_bytes + spec.size > max_bytes
        if too_many or too_big:
            chunks.append(current)
            current, current_bytes = [], 0
        current.append(spec)
        current_bytes += spec.size
    if current:
        chunks.append(current)
    return chunks


def join_pdfs(parts: Sequence[Path], target: Path) -> int:
    """Concatenate PDFs into `target`, keeping their bookmarks.

    The result is written to a temporary file beside `target` and renamed,
    so `target` is either complete or untouched.

    Returns:
        Pages written.
    """
    # TODO: pypdf keeps every copied page object in memory until the write, so
    # joining chunks of several GB needs about as much RAM as their total size.
    writer = PdfWriter()
    for part in parts:
        writer.append(PdfReader(part), import_outline=True)
    page_count = len(writer.pages)

    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            writer.write(file)
        give_default_mode(Path(temporary))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return page_count
