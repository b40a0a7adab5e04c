"""Folder inputs: which documents to merge, in what order, and whether they changed.

`merge_folder` merges every document of a folder that matches a glob pattern.
This module finds those documents, sorts them, names the output from a
template, and keeps a fingerprint of the inputs in a small state file beside
the output, so an unchanged folder is skipped instead of merged and charged
again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pdfco_tasks.exceptions import PreflightError

__all__ = [
    "TEMPLATE_FIELDS",
    "FolderState",
    "InputFile",
    "SortOrder",
    "find_documents",
    "fingerprint",
    "natural_sort_key",
    "read_state",
    "render_output_name",
    "resolve_timezone",
    "state_path",
    "write_state",
]

SortOrder = Literal["name", "mtime"]

TEMPLATE_FIELDS = ("date", "time", "datetime", "count", "folder")
"""Placeholders of an output name template.

`{date}` is `2024-05-31`, `{time}` is `021500`, `{datetime}` is
`2024-05-31T021500` (no colons, which some file systems reject), `{count}` is
the number of inputs and `{folder}` is the input folder's name.
"""

_FINGERPRINT_VERSION = 1
_HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class InputFile:
    """One document found in the input folder.

    Attributes:
        path: Absolute path of the file.
        name: Path relative to the input folder, with `/` separators.
        size: Size in bytes.
        mtime_ns: Modification time in nanoseconds since the epoch.
    """

    path: str
    name: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FolderState:
    """The outcome of the last successful merge of a folder.

    Attributes:
        fingerprint: `fingerprint()` of the inputs that were merged.
        output: Path of the merged PDF.
        job_id: The PDF.co job id.
        page_count: Pages of the merged PDF.
        merged_at: ISO 8601 time of the merge.
    """

    fingerprint: str
    output: str
    job_id: str
    page_count: int
    merged_at: str


def natural_sort_key(name: str) -> tuple[Any, ...]:
    """Build a sort key that orders digit runs by value, so `2` sorts before `10`.

    Letters compare case-insensitively. Names that tie, such as `a2` and
    `A02`, fall back to the exact text, so the order is total.

    Example:
        >>> sorted(["page10.pdf", "page2.pdf"], key=natural_sort_key)
        ['page2.pdf', 'page10.pdf']
    """
    parts = re.split(r"(\d+)", name)
    # `re.split` with a group alternates text and digits, so the same positions
    # always hold the same type and tuples compare without a TypeError.
    key = tuple(
        int(part) if index % 2 else part.casefold() for index, part in enumerate(parts)
    )
    return (key, name)


def find_documents(
    input_dir: Path,
    pattern: str = "*.pdf",
    order: SortOrder = "name",
    *,
    exclude_dir: Path | None = None,
) -> list[InputFile]:
    """List the files of `input_dir` that match `pattern`, in merge order.

    Hidden files (names starting with a dot) and files inside `exclude_dir`,
    typically the output folder, are left out.

    Args:
        input_dir: The folder to search.
        pattern: A glob relative to `input_dir`; `**/*.pdf` searches subfolders.
        order: `name` sorts naturally by relative path; `mtime` sorts by
            modification time, oldest first, then by name.
        exclude_dir: A folder whose files are never inputs.

    Returns:
        The matching files; an empty list when nothing matches.

    Raises:
        PreflightError: When the folder is missing, the pattern is not a
            relative glob, or the order is unknown.
    """
    folder = _check_input_dir(input_dir)
    _check_pattern(pattern)
    if order not in get_args(SortOrder):
        raise PreflightError(
            f"order must be 'name' or 'mtime', not {order!r}.",
            problems=[(str(order), "unknown order")],
        )

    excluded = exclude_dir.resolve() if exclude_dir is not None else None
    files = [
        _input_file(path, folder)
        for path in folder.glob(pattern)
        if _is_input(path, folder, excluded)
    ]
    if order == "mtime":
        return sorted(files, key=lambda f: (f.mtime_ns, natural_sort_key(f.name)))
    return sorted(files, key=lambda f: natural_sort_key(f.name))


def _check_input_dir(input_dir: Path) -> Path:
    folder = input_dir.expanduser().resolve()
    if not folder.exists():
        raise PreflightError(
            f"Input folder {folder} does not exist. Check input_dir.",
            problems=[(str(folder), "missing")],
        )
    if not folder.is_dir():
        raise PreflightError(
            f"Input folder {folder} is a file, but input_dir must be a folder.",
            problems=[(str(folder), "not a folder")],
        )
    return folder


def _check_pattern(pattern: str) -> None:
    parts = Path(pattern).parts
    if not pattern or Path(pattern).is_absolute() or ".." in parts:
        raise PreflightError(
            "pattern must be a glob relative to the input folder, such as "
            f"'*.pdf' or '**/*.pdf', not {pattern!r}.",
            problems=[(pattern, "not a relative glob")],
        )


def _is_input(path: Path, folder: Path, excluded: Path | None) -> bool:
    relative = path.relative_to(folder)
    if any(part.startswith(".") for part in relative.parts):
        return False
    if not path.is_file():
        return False
    return excluded is None or not path.resolve().is_relative_to(excluded)


def _input_file(path: Path, folder: Path) -> InputFile:
    stat = path.stat()
    return InputFile(
        path=str(path),
        name=path.relative_to(folder).as_posix(),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
    )


def fingerprint(files: Sequence[InputFile], options: dict[str, Any]) -> str:
    """Hash the inputs' names, order, sizes and contents with the merge options.

    The content hash makes a touched but unchanged file keep its fingerprint,
    while any change of bytes, names, order or options changes it.

    Args:
        files: The inputs, in merge order.
        options: Settings that change the output, such as `bookmarks`.

    Returns:
        A SHA-256 hex digest.
    """
    entries = [[f.name, f.size, _sha256(Path(f.path))] for f in files]
    document = {"version": _FINGERPRINT_VERSION, "files": entries, "options": options}
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_timezone(name: str) -> ZoneInfo:
    """Return the IANA time zone `name`, such as `Europe/Berlin`.

    Raises:
        PreflightError: When the name is not a known time zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PreflightError(
            f"timezone must be an IANA time zone name such as 'UTC' or "
            f"'Europe/Berlin', not {name!r}.",
            problems=[(name, "unknown time zone")],
        ) from exc


def render_output_name(template: str, moment: datetime, count: int, folder: str) -> str:
    """Fill an output name template such as `merged-{date}.pdf`.

    Args:
        template: A file name with placeholders from `TEMPLATE_FIELDS`.
        moment: The time that `{date}`, `{time}` and `{datetime}` show, already
            in the wanted time zone.
        count: The number of inputs, for `{count}`.
        folder: The input folder's name, for `{folder}`.

    Returns:
        A plain file name ending in `.pdf`.

    Raises:
        PreflightError: When the template has an unknown placeholder, contains
            a path separator or does not end in `.pdf`.
    """
    _check_template_fields(template)
    values = {
        "date": moment.strftime("%Y-%m-%d"),
        "time": moment.strftime("%H%M%S"),
        "datetime": moment.strftime("%Y-%m-%dT%H%M%S"),
        "count": count,
        "folder": folder,
    }
    try:
        name = template.format(**values)
    except (ValueError, IndexError) as exc:
        raise _template_error(template, f"it cannot be filled in: {exc}") from exc

    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise _template_error(template, "it must give a file name, not a path")
    if not name.lower().endswith(".pdf"):
        raise _template_error(template, "the name must end in .pdf")
    return name


def _check_template_fields(template: str) -> None:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise _template_error(template, f"it is not a valid template: {exc}") from exc

    for _, field, _, _ in parsed:
        if field is not None and field not in TEMPLATE_FIELDS:
            allowed = ", ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
            raise _template_error(
                template, f"{{{field}}} is not a placeholder; use {allowed}"
            )


def _template_error(template: str, reason: str) -> PreflightError:
    return PreflightError(
        f"output_name_template {template!r} is invalid: {reason}.",
        problems=[(template, reason)],
    )


def state_path(output_dir: Path, input_dir: Path, pattern: str) -> Path:
    """Return the state file of one input folder and pattern inside `output_dir`.

    Several folders may share an output folder, so the file name carries a
    hash of the input folder's absolute path and the pattern.
    """
    source = f"{input_dir.expanduser().resolve()}\n{pattern}"
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return output_dir / f".pdfco-merge-folder-{digest}.json"


def read_state(path: Path) -> FolderState | None:
    """Read a state file; a missing or unreadable file gives None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return FolderState(
            fingerprint=str(data["fingerprint"]),
            output=str(data["output"]),
            job_id=str(data["job_id"]),
            page_count=int(data["page_count"]),
            merged_at=str(data["merged_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(path: Path, state: FolderState) -> None:
    """Write a state file atomically, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(asdict(state), indent=2, sort_keys=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
