"""Pre-flight inspection of merge inputs, before any PDF.co credit is spent.

`inspect_sources` looks at every input locally: its type (from the extension,
confirmed by the leading bytes where that is cheap), size, SHA-256 and the
pages it adds to the merge. It collects every problem across all inputs and
raises one `PreflightError` that lists them, so a caller fixes all inputs in
one pass instead of paying for a merge that PDF.co rejects.

Page counts are exact for PDFs and images. Office documents, RTF, text, ZIP
archives and URLs are converted by PDF.co, so only a lower bound is known.

Example:
    >>> specs = inspect_sources(["samples/01-report.pdf", "samples/04-chart.png"])
    >>> [(spec.kind, spec.min_pages, spec.exact) for spec in specs]
    [('pdf', 3, True), ('image', 1, True)]
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from PIL import Image

from pdfco_tasks._pagetree import (
    PdfUnreadableError,
    open_pdf,
    short_error,
    walk_pages,
)
from pdfco_tasks.exceptions import PreflightError
from pdfco_tasks.models import InputKind, InputSpec

__all__ = [
    "CONTENT_TYPES",
    "MAX_TOTAL_BYTES",
    "SUPPORTED_EXTENSIONS",
    "PdfPageCount",
    "count_pdf_pages",
    "file_sha256",
    "inspect_source",
    "inspect_sources",
    "source_for_display",
]

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: dict[str, InputKind] = {
    "pdf": "pdf",
    "doc": "doc",
    "docx": "docx",
    "xls": "xls",
    "xlsx": "xlsx",
    "rtf": "rtf",
    "txt": "txt",
    "png": "image",
    "jpg": "image",
    "jpeg": "image",
    "gif": "image",
    "bmp": "image",
    "tif": "image",
    "tiff": "image",
    "zip": "zip",
}
"""Input kind per lower-case file extension (without the dot) that merge2 accepts."""

CONTENT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "rtf": "application/rtf",
    "txt": "text/plain",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "zip": "application/zip",
}
"""MIME type sent with the upload, per file extension."""

MAX_TOTAL_BYTES = 2 * 1024**3
"""PDF.co merge2 limit on the total size of all inputs of one merge."""

_REJECTED_IMAGES = {
    "heic": "HEIC/HEIF",
    "heif": "HEIC/HEIF",
    "webp": "WEBP",
}
_HTTP_SCHEMES = {"http", "https"}
_PDF_HEADER_WINDOW = 1024
_OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Pillow's format names per extension; MPO is the multi-picture JPEG of cameras.
_IMAGE_FORMATS = {
    "png": {"PNG"},
    "jpg": {"JPEG", "MPO"},
    "jpeg": {"JPEG", "MPO"},
    "gif": {"GIF"},
    "bmp": {"BMP", "DIB"},
    "tif": {"TIFF"},
    "tiff": {"TIFF"},
}
_REJECTED_FORMATS = {"WEBP", "HEIF", "AVIF"}
_CHUNK_SIZE = 1024 * 1024
_EXTENSION_LIST = ", ".join(SUPPORTED_EXTENSIONS)


@dataclass(frozen=True)
class PdfPageCount:
    """Pages of one PDF.

    Attributes:
        pages: Pages found by walking the page tree; the number that counts.
        stored_count: The `/Count` stored in the root of the page tree, or
            None when it is missing or not a number.
        notes: Oddities found while walking, including a `stored_count` that
            disagrees with `pages`.
    """

    pages: int
    stored_count: int | None
    notes: tuple[str, ...] = ()


class _Problem(Exception):
    """Raised inside this module when one input cannot be merged."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def inspect_sources(
    sources: Sequence[str | os.PathLike[str]],
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> list[InputSpec]:
    """Inspect every input and report all problems at once.

    Args:
        sources: Local paths and http(s) URLs, in merge order.
        max_total_bytes: Limit on the summed size of the local files.

    Returns:
        One `InputSpec` per source, in the given order.

    Raises:
        PreflightError: The list is empty, or at least one input cannot be
            merged. `problems` contains one `(source, reason)` pair per problem
            and the message lists them one per line.
    """
    if not sources:
        raise PreflightError(
            "No inputs to merge; pass at least one file path or http(s) URL.",
            problems=[],
        )

    not_paths = [
        (repr(source), "not a file path or URL; pass a str or os.PathLike")
        for source in sources
        if not isinstance(source, (str, os.PathLike))
    ]
    if not_paths:
        raise PreflightError(
            _problem_message(not_paths, len(sources)), problems=not_paths
        )

    # Hashing and parsing a file over PDF.co's limit would take minutes and
    # gigabytes of memory only to reject it, so sizes are checked first.
    too_big = [
        (os.fspath(source), _file_size_reason(size))
        for source, size in _local_sizes(sources).items()
        if size > MAX_TOTAL_BYTES
    ]
    if too_big:
        raise PreflightError(_problem_message(too_big, len(sources)), problems=too_big)

    specs: list[InputSpec] = []
    problems: list[tuple[str, str]] = []
    for source in sources:
        try:
            specs.append(inspect_source(source))
        except PreflightError as exc:
            problems.extend(exc.problems)

    total = sum(spec.size for spec in specs)
    if total > max_total_bytes:
        problems.append(("all inputs", _total_size_reason(total, max_total_bytes)))

    if problems:
        raise PreflightError(
            _problem_message(problems, len(sources)), problems=problems
        )
    return specs


def _local_sizes(
    sources: Sequence[str | os.PathLike[str]],
) -> dict[str | os.PathLike[str], int]:
    """Map each regular local file among `sources` to its size in bytes."""
    sizes: dict[str | os.PathLike[str], int] = {}
    for source in sources:
        if isinstance(source, str) and _is_url(source):
            continue
        try:
            info = os.stat(source)
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(info.st_mode):
            sizes[source] = info.st_size
    return sizes


def _file_size_reason(size: int) -> str:
    return (
        f"{size:,} bytes is over the {MAX_TOTAL_BYTES:,}-byte limit of one PDF.co "
        "merge, even alone; split the file first"
    )


def inspect_source(source: str | os.PathLike[str]) -> InputSpec:
    """Inspect one input: a local file or an http(s) URL.

    Args:
        source: A file path or an http(s) URL.

    Returns:
        What the input adds to the merge.

    Raises:
        PreflightError: The input cannot be merged; `problems` contains one
            `(source, reason)` pair.
    """
    name = os.fspath(source)
    try:
        if isinstance(source, str) and _is_url(source):
            return _inspect_url(source)
        return _inspect_file(name, Path(source))
    except _Problem as problem:
        raise PreflightError(
            f"{source_for_display(name)}: {problem.reason}",
            problems=[(name, problem.reason)],
        ) from None


def count_pdf_pages(path: Path) -> PdfPageCount:
    """Count the pages of a PDF by walking its page tree.

    The walk reads raw objects instead of building pypdf page objects, so a
    20,000-page file takes a fraction of a second. The stored root `/Count` is
    compared with the walked count, and a disagreement becomes a note. The
    walked count wins because it is what a viewer shows.

    Args:
        path: The PDF file.

    Returns:
        The walked count, the stored `/Count` and notes.

    Raises:
        PreflightError: The file cannot be opened, needs a user password, or
            its page tree is damaged.
    """
    try:
        with open_pdf(path) as document:
            walk = walk_pages(document)
    except PdfUnreadableError as exc:
        raise PreflightError(
            f"{path}: {exc.reason}", problems=[(str(path), exc.reason)]
        ) from exc
    except (OSError, ValueError) as exc:
        reason = f"cannot be read ({short_error(exc)})"
        raise PreflightError(
            f"{path}: {reason}", problems=[(str(path), reason)]
        ) from exc

    notes = list(walk.notes)
    if walk.stored_count is not None and walk.stored_count != walk.pages:
        notes.append(
            f"the page tree stores /Count {walk.stored_count}, but walking it "
            f"finds {walk.pages} pages; using {walk.pages}"
        )
    return PdfPageCount(
        pages=walk.pages, stored_count=walk.stored_count, notes=tuple(notes)
    )


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def source_for_display(source: str) -> str:
    """Return `source` for messages and logs: URLs lose their query string.

    The query string of a presigned URL is its signature, so it is left out.

    Args:
        source: A path or URL as the caller gave it.

    Returns:
        The path unchanged, or the URL without query string and fragment.
    """
    parts = urlsplit(source)
    if parts.scheme.lower() in _HTTP_SCHEMES and parts.netloc:
        return parts._replace(query="", fragment="").geturl()
    return source


def _is_url(source: str) -> bool:
    scheme, separator, _ = source.partition(":")
    # A one-letter scheme is a Windows drive, as in C:\reports\a.pdf, and an
    # existing file such as `notes:2024.txt` is a path whatever its name.
    looks_like_url = (
        bool(separator) and len(scheme) > 1 and scheme.isascii() and scheme.isalpha()
    )
    return looks_like_url and not os.path.lexists(source)


def _inspect_url(source: str) -> InputSpec:
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if scheme not in _HTTP_SCHEMES:
        raise _Problem(
            f"unsupported URL scheme {scheme!r}; PDF.co fetches only http(s) "
            "URLs, so pass an http(s) URL or a local file path"
        )
    if not parts.netloc:
        raise _Problem("URL has no host name")
    if "," in source:
        raise _Problem(
            "URL contains a comma, but PDF.co splits the list of input URLs on "
            "commas; percent-encode it as %2C or download the file and pass "
            "its path"
        )
    return InputSpec(
        source=source, kind="url", size=0, sha256="", min_pages=1, exact=False
    )


def _inspect_file(name: str, path: Path) -> InputSpec:
    size = _regular_file_size(path)
    extension = _extension(path)
    kind = SUPPORTED_EXTENSIONS[extension]
    head = _read_head(path)

    min_pages, exact, notes = _count_pages(path, extension, kind, head)
    for note in notes:
        logger.warning("%s: %s", name, note)

    return InputSpec(
        source=name,
        kind=kind,
        size=size,
        sha256=file_sha256(path),
        min_pages=min_pages,
        exact=exact,
        content_type=CONTENT_TYPES[extension],
        notes=tuple(notes),
    )


def _regular_file_size(path: Path) -> int:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise _Problem("file not found; check the path") from None
    except PermissionError:
        raise _Problem(
            "cannot be read: permission denied; fix its permissions"
        ) from None
    except OSError as exc:
        raise _Problem(f"cannot be read ({short_error(exc)})") from None

    if stat.S_ISDIR(info.st_mode):
        raise _Problem("is a directory, not a file; pass the files inside it")
    if not stat.S_ISREG(info.st_mode):
        raise _Problem("is not a regular file (a FIFO, socket or device)")
    if info.st_size == 0:
        raise _Problem("is empty (0 bytes)")
    return info.st_size


def _extension(path: Path) -> str:
    extension = path.suffix.lower().lstrip(".")
    if extension in _REJECTED_IMAGES:
        label = _REJECTED_IMAGES[extension]
        raise _Problem(
            f"PDF.co merge2 does not accept {label} images; convert to PNG or "
            "JPEG first"
        )
    if extension not in SUPPORTED_EXTENSIONS:
        shown = f".{extension}" if extension else "no extension"
        raise _Problem(
            f"unsupported file type ({shown}); merge2 accepts {_EXTENSION_LIST}"
        )
    return extension


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(_PDF_HEADER_WINDOW)
    except PermissionError:
        raise _Problem(
            "cannot be read: permission denied; fix its permissions"
        ) from None
    except OSError as exc:
        raise _Problem(f"cannot be read ({short_error(exc)})") from None


def _count_pages(
    path: Path, extension: str, kind: InputKind, head: bytes
) -> tuple[int, bool, list[str]]:
    if kind == "pdf":
        return _count_pdf(path, head)
    if kind == "image":
        return _count_image(path, extension)
    if kind in ("docx", "xlsx"):
        _check_ooxml(path, extension)
        return 1, False, []
    if kind == "zip":
        return _count_zip(path), False, []
    return 1, False, _office_notes(extension, head)


def _count_pdf(path: Path, head: bytes) -> tuple[int, bool, list[str]]:
    if b"%PDF-" not in head:
        raise _Problem(
            f"is damaged or not a PDF: no %PDF- header in its first "
            f"{_PDF_HEADER_WINDOW} bytes"
        )
    try:
        count = count_pdf_pages(path)
    except PreflightError as exc:
        raise _Problem(exc.problems[0][1]) from None
    if count.pages == 0:
        raise _Problem("contains no pages")
    return count.pages, True, list(count.notes)


def _count_image(path: Path, extension: str) -> tuple[int, bool, list[str]]:
    try:
        with Image.open(path) as image:
            image_format = image.format or ""
            frames = getattr(image, "n_frames", 1)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _Problem(
            f"is damaged or not a {extension.upper()} image "
            f"(Pillow: {short_error(exc)})"
        ) from None

    if image_format in _REJECTED_FORMATS:
        raise _Problem(
            f"is a {image_format} image despite its .{extension} extension; "
            f"PDF.co merge2 does not accept {image_format} images, so convert "
            "it to PNG or JPEG first"
        )
    notes = []
    if image_format not in _IMAGE_FORMATS[extension]:
        notes.append(f"is a {image_format} image despite its .{extension} extension")
    # Every frame becomes a page: animated GIFs, multi-page TIFFs, APNGs and
    # the multi-picture JPEGs (MPO) of cameras.
    # NOTE: PDF.co does not document how merge2 renders multi-frame images;
    # one page per frame is what the local sandbox does.
    return frames, True, notes


def _check_ooxml(path: Path, extension: str) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise _Problem(
            f"is damaged: a .{extension} file must be a ZIP container "
            f"({short_error(exc)})"
        ) from None
    if "[Content_Types].xml" not in names:
        raise _Problem(
            f"is damaged: a .{extension} file must contain [Content_Types].xml"
        )


def _count_zip(path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if _is_document(info)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise _Problem(
            f"is damaged or not a ZIP archive ({short_error(exc)})"
        ) from None

    if not members:
        raise _Problem("is an empty ZIP archive; it adds nothing to merge")
    for member in members:
        _check_zip_member(member)
    return len(members)


def _is_document(member: zipfile.ZipInfo) -> bool:
    # macOS Finder adds resource forks under __MACOSX/; they are not documents.
    return not member.is_dir() and not member.filename.startswith("__MACOSX/")


def _check_zip_member(member: zipfile.ZipInfo) -> None:
    path = PurePosixPath(member.filename)
    extension = path.suffix.lower().lstrip(".")
    if path.is_absolute() or ".." in path.parts or "\\" in member.filename:
        raise _Problem(
            f"member {member.filename!r} has an unsafe name that points outside "
            "the archive; rebuild the archive with relative names"
        )
    if member.flag_bits & 0x1:
        raise _Problem(
            f"member {member.filename!r} is password-protected; PDF.co cannot open it"
        )
    if extension == "zip":
        raise _Problem(
            f"member {member.filename!r} is a nested ZIP archive; unpack it "
            "and pass its files instead"
        )
    if extension not in SUPPORTED_EXTENSIONS:
        shown = f".{extension}" if extension else "no extension"
        raise _Problem(
            f"member {member.filename!r} has an unsupported file type "
            f"({shown}); remove it or convert it to one of {_EXTENSION_LIST}"
        )


def _office_notes(extension: str, head: bytes) -> list[str]:
    if extension in ("doc", "xls") and not head.startswith(_OLE2_SIGNATURE):
        return [
            f"is not an OLE2 (binary Office) file despite its .{extension} "
            "extension; PDF.co may still convert it"
        ]
    if extension == "rtf" and not head.lstrip().startswith(b"{\\rtf"):
        return ["does not start with {\\rtf; PDF.co may convert it as plain text"]
    return []


def _total_size_reason(total: int, limit: int) -> str:
    return (
        f"total size {_format_bytes(total)} exceeds the PDF.co merge2 limit of "
        f"{_format_bytes(limit)}; split the inputs into several merges"
    )


def _format_bytes(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    unit = "KiB"
    for larger in ("MiB", "GiB"):
        if value < 1024:
            break
        value /= 1024
        unit = larger
    return f"{value:.1f} {unit} ({size:,} bytes)"


def _problem_message(problems: list[tuple[str, str]], total: int) -> str:
    bad = len({source for source, _ in problems if source != "all inputs"})
    if bad:
        summary = f"{bad} of {total} inputs cannot be merged:"
    else:
        summary = f"The {total} inputs cannot be merged together:"
    lines = [f"  {source_for_display(source)}: {reason}" for source, reason in problems]
    return "\n".join([summary, *lines])
