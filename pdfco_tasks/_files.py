"""File-system helpers shared by the download and join steps."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_file_mode", "give_default_mode"]

_FALLBACK_MODE = 0o644


def default_file_mode() -> int:
    """Return the mode that `open()` gives a new file under the current umask.

    Temporary files are created with mode 0600, so a result moved into place
    from one would be unreadable to other users. The umask is read from
    `/proc/self/status` because `os.umask` can only be read by changing it,
    which races with other threads creating files.
    """
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return _FALLBACK_MODE
    for line in status.splitlines():
        if line.startswith("Umask:"):
            return 0o666 & ~int(line.split()[1], 8)
    return _FALLBACK_MODE


def give_default_mode(path: Path) -> None:
    """Set `path` to the mode a newly created file would get."""
    os.chmod(path, default_file_mode())
