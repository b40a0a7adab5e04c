"""The output side of a merge: checks, an exclusive lock and temporary files.

A merge writes its download and chunk results under hidden names beside the
output, and moves the validated file into place at the end. Two merges into the
same output must not interleave, so each holds a lock on the output for its
whole run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from pdfco_tasks.exceptions import ConfigurationError, PreflightError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "check_output",
    "chunk_path",
    "lock_output",
    "remove_leftovers",
    "staging_path",
]

logger = logging.getLogger("pdfco_tasks")


def check_output(output: Path, overwrite: bool) -> None:
    """Raise PreflightError unless a merge can write `output`.

    The directory is created when missing, and a probe file is written and
    removed, so an unwritable directory or an overlong name fails before any
    credit is spent.
    """
    if output.suffix.lower() != ".pdf" or output.name.lower() == ".pdf":
        _reject(output, "needs a file name ending in .pdf, such as merged.pdf")
    try:
        is_dir, exists = output.is_dir(), output.exists()
    except OSError as exc:
        _reject(output, f"cannot be written: {exc.strerror or exc}")
    if is_dir:
        _reject(output, "is a directory; give a file path ending in .pdf")
    if exists and not overwrite:
        _reject(
            output,
            "already exists; allow overwriting it (overwrite=True, or --overwrite "
            "on the command line) or choose another path",
        )
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(
            dir=output.parent, prefix=f".{output.name}.", suffix=".probe"
        )
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        _reject(output, f"cannot be written: {exc.strerror or exc}")


def _reject(output: Path, reason: str) -> NoReturn:
    raise PreflightError(f"Output {output} {reason}.", problems=[(str(output), reason)])


@contextlib.contextmanager
def lock_output(output: Path, state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on `output` for the duration of a merge.

    The lock file lives in the state directory, named by a hash of the output
    path, and the operating system releases the lock when the process dies.

    Raises:
        PreflightError: When another merge into `output` is running.
        ConfigurationError: When the state directory cannot be used.
    """
    if fcntl is None:  # pragma: no cover - Windows
        # TODO: no lock on Windows, where two merges into one output can interleave.
        yield
        return

    digest = hashlib.sha256(str(output).encode()).hexdigest()[:32]
    path = state_dir / "locks" / f"{digest}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot use the state directory {state_dir}: {exc.strerror or exc}; "
            "set PDFCO_TASKS_HOME to a writable directory."
        ) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _reject(output, "is being written by another merge; wait for it to end")
        yield
    finally:
        os.close(handle)


def staging_path(output: Path) -> Path:
    """Return the hidden path that a merge downloads `output` to."""
    return output.with_name(f".{output.name}.download")


def chunk_path(output: Path, index: int) -> Path:
    """Return the hidden path of the result of chunk `index` (0-based)."""
    return output.with_name(f".{output.stem}.part-{index + 1:03d}.pdf")


def _leftover_patterns(output: Path) -> list[str]:
    chunk = f".{output.stem}.part-[0-9][0-9][0-9].pdf"
    return [
        staging_path(output).name,
        f".{staging_path(output).name}.*.part",
        chunk,
        f".{chunk}.download*",
        f".{output.name}.*.probe",
    ]


def remove_leftovers(output: Path) -> list[Path]:
    """Delete temporary files that a killed merge into `output` left behind.

    Call it only while holding `lock_output`, so no running merge owns them.

    Returns:
        The files removed.
    """
    removed: list[Path] = []
    for pattern in _leftover_patterns(output):
        for path in output.parent.glob(pattern):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
