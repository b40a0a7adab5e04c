"""The merge itself: fetch every input, convert it to PDF and join the pages."""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pypdf import PdfWriter

from pdfco_tasks.sandbox.convert import (
    IMAGE_KINDS,
    OFFICE_KINDS,
    OfficeConverter,
    Piece,
    detect_kind,
    image_to_pdf,
    open_pdf,
)
from pdfco_tasks.sandbox.errors import InputError
from pdfco_tasks.sandbox.sources import Source, SourceFetcher, describe_bytes

COPY_CHUNK_BYTES = 1024 * 1024


@dataclass
class MergeSpec:
    """The inputs and options of one merge request.

    Attributes:
        endpoint: `merge` (PDF only) or `merge2` (any supported type).
        sources: Inputs in merge order.
        bookmarks: Add one outline item per input (profile GenerateBookmarks).
        auth: HTTP basic credentials for loopback source URLs.
        drop_last_page: Leave out the last page (the `drop-page` fault).
    """

    endpoint: str
    sources: list[Source]
    bookmarks: bool = False
    auth: tuple[str, str] | None = None
    drop_last_page: bool = False


class Merger:
    """Runs merges in a scratch directory with the fetcher and converters given.

    Args:
        fetcher: Brings inputs to local paths.
        office: Converts office documents.
    """

    def __init__(self, fetcher: SourceFetcher, office: OfficeConverter) -> None:
        self.fetcher = fetcher
        self.office = office

    def run(self, spec: MergeSpec, work_dir: Path, output: Path) -> int:
        """Merge the inputs of `spec` into `output` and return the page count.

        The count is that of the full merge, also when the `drop-page` fault
        left out the last page of the written file.

        Raises:
            InputError: When an input cannot be fetched, read or converted.
            ApiError: When the inputs exceed the size limit of the fetcher.
        """
        budget = self.fetcher.limit
        groups: list[tuple[str, list[Piece]]] = []
        for index, source in enumerate(spec.sources):
            input_dir = work_dir / f"input-{index}"
            input_dir.mkdir()
            path = self.fetcher.fetch(source, input_dir, budget, spec.auth)
            budget -= path.stat().st_size
            pieces = self._expand(path, source.label, spec.endpoint, input_dir)
            groups.append((source.label, pieces))
        return _write_merged(groups, output, spec.bookmarks, spec.drop_last_page)

    def _expand(
        self,
        path: Path,
        label: str,
        endpoint: str,
        work_dir: Path,
        nested: bool = False,
    ) -> list[Piece]:
        kind = detect_kind(path, label)
        if endpoint == "merge" and kind != "pdf":
            raise InputError(
                442,
                f"Input {label} is not a PDF file; /v1/pdf/merge "
                "accepts PDF only, use /v1/pdf/merge2 for other "
                "file types",
            )
        if kind == "pdf":
            return [Piece(path, label)]
        if kind in IMAGE_KINDS:
            output = work_dir / f"image-{len(list(work_dir.iterdir()))}.pdf"
            image_to_pdf(path, output, label)
            return [Piece(output, label)]
        if kind in OFFICE_KINDS:
            target = work_dir / f"office-{len(list(work_dir.iterdir()))}"
            return [Piece(self.office.convert(path, kind, target, label), label)]
        if nested:
            raise InputError(
                415,
                f"Input {label} is a ZIP inside a ZIP; nested "
                "archives are not supported",
            )
        return self._expand_zip(path, label, work_dir)

    def _expand_zip(self, path: Path, label: str, work_dir: Path) -> list[Piece]:
        try:
            with zipfile.ZipFile(path) as archive:
                members = _zip_members(archive, label, self.fetcher.limit)
                pieces: list[Piece] = []
                for index, member in enumerate(members):
                    member_label = f"{label}/{member.filename}"
                    member_dir = work_dir / f"member-{index}"
                    member_dir.mkdir()
                    target = member_dir / PurePosixPath(member.filename).name
                    _extract(archive, member, target, member_label)
                    pieces += self._expand(
                        target, member_label, "merge2", member_dir, nested=True
                    )
        except zipfile.BadZipFile as exc:
            raise InputError(442, f"Input {label} is a damaged ZIP archive") from exc
        return pieces


def _zip_members(
    archive: zipfile.ZipFile, label: str, limit: int
) -> list[zipfile.ZipInfo]:
    members = []
    total = 0
    for info in sorted(archive.infolist(), key=lambda item: item.filename):
        if info.is_dir() or info.filename.startswith("__MACOSX/"):
            continue
        if not _is_safe_member(info.filename):
            raise InputError(
                442, f"Input {label} contains an unsafe member name {info.filename!r}"
            )
        if info.flag_bits & 0x1:
            raise InputError(
                441, f"Input {label} has a password-protected member {info.filename!r}"
            )
        total += info.file_size
        members.append(info)
    if not members:
        raise InputError(442, f"Input {label} is a ZIP archive without files")
    if total > limit:
        raise InputError(
            400, f"Input {label} unpacks to more than the {describe_bytes(limit)} limit"
        )
    return members


def _is_safe_member(name: str) -> bool:
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return False
    parts = PurePosixPath(name).parts
    if parts and len(parts[0]) == 2 and parts[0][1] == ":":
        return False
    return ".." not in parts


def _extract(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, label: str
) -> None:
    written = 0
    with archive.open(member) as source, target.open("wb") as sink:
        while chunk := source.read(COPY_CHUNK_BYTES):
            written += len(chunk)
            if written > member.file_size:
                raise InputError(
                    442, f"Input {label} is larger than its ZIP header states"
                )
            sink.write(chunk)


def _write_merged(
    groups: list[tuple[str, list[Piece]]],
    output: Path,
    bookmarks: bool,
    drop_last_page: bool,
) -> int:
    writer = PdfWriter()
    outline: list[tuple[str, int]] = []
    for label, pieces in groups:
        start = len(writer.pages)
        for piece in pieces:
            reader = open_pdf(piece.path, piece.label)
            for page in reader.pages:
                writer.add_page(page)
        if bookmarks and len(writer.pages) > start:
            outline.append((label, start))
    page_count = len(writer.pages)
    if drop_last_page and page_count:
        writer.remove_page(page_count - 1)
    for title, page_number in outline:
        if page_number < len(writer.pages):
            writer.add_outline_item(title=title, page_number=page_number)
    with output.open("wb") as file:
        writer.write(file)
    return page_count


def remove_tree(path: Path) -> None:
    """Delete a scratch directory, ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)
