"""Benchmark inputs written byte by byte: PDFs of a given size or page count.

The writer emits a classic cross-reference table and uncompressed objects, so
a 20,000-page file takes well under a second to write, and random image data
makes a file of the requested size that no transport can compress.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PdfBuilder", "write_merged_like", "write_padded_file", "write_pdf"]

PAGE_WIDTH = 612
PAGE_HEIGHT = 792
IMAGE_WIDTH = 1024
PADDING_BLOCK_BYTES = 8 * 1024 * 1024


@dataclass
class PdfBuilder:
    """Collects numbered objects and writes them with a cross-reference table."""

    bodies: dict[int, bytes] = field(default_factory=dict)
    next_id: int = 1

    def reserve(self) -> int:
        """Return a new object number whose body is set later."""
        number = self.next_id
        self.next_id += 1
        return number

    def set(self, number: int, body: bytes) -> int:
        """Set the body of object `number` and return the number."""
        self.bodies[number] = body
        return number

    def add(self, body: bytes) -> int:
        """Add an object and return its number."""
        return self.set(self.reserve(), body)

    def add_stream(self, data: bytes, extra: bytes = b"") -> int:
        """Add a stream object without a filter."""
        head = b"<< /Length %d %s>>\nstream\n" % (len(data), extra)
        return self.add(head + data + b"\nendstream")

    def write(self, path: Path, root: int) -> Path:
        """Write every object, the xref table and the trailer to `path`."""
        missing = [n for n in range(1, self.next_id) if n not in self.bodies]
        if missing:
            raise ValueError(f"objects {missing[:5]} were reserved but never set")
        offsets: list[int] = []
        with path.open("wb") as file:
            position = file.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
            for number in range(1, self.next_id):
                offsets.append(position)
                body = self.bodies[number]
                position += file.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
            file.write(_xref_table(offsets))
            file.write(
                b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                % (self.next_id, root, position)
            )
        return path


def _xref_table(offsets: Sequence[int]) -> bytes:
    lines = [b"xref\n0 %d\n" % (len(offsets) + 1), b"0000000000 65535 f \n"]
    lines.extend(b"%010d 00000 n \n" % offset for offset in offsets)
    return b"".join(lines)


def write_pdf(
    path: Path, pages: int, *, image_bytes: int = 0, label: str = "", seed: int = 0
) -> Path:
    """Write a PDF of `pages` text pages, the first carrying a random image.

    Args:
        path: Where to write.
        pages: Number of pages, at least 1.
        image_bytes: Size of an 8-bit grey image of random pixels on page 1,
            rounded up to whole rows of 1024 pixels; 0 for no image.
        label: Text shown on every page, so that files differ in content.
        seed: Seed of the pixel generator.

    Returns:
        `path`.
    """
    if pages < 1:
        raise ValueError(f"pages must be at least 1, not {pages}")
    builder = PdfBuilder()
    catalog = builder.reserve()
    tree = builder.reserve()
    font = builder.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    image = _add_image(builder, image_bytes, seed) if image_bytes > 0 else None

    kids = []
    for index in range(pages):
        text = f"{label} page {index + 1}".encode("latin-1", "replace")
        drawing = b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % _escape(text)
        resources = b"/Font << /F1 %d 0 R >>" % font
        if image is not None and index == 0:
            drawing = (
                b"q %d 0 0 %d 0 0 cm /Im0 Do Q\n"
                % (
                    PAGE_WIDTH,
                    PAGE_HEIGHT,
                )
                + drawing
            )
            resources += b" /XObject << /Im0 %d 0 R >>" % image
        contents = builder.add_stream(drawing)
        kids.append(builder.add(_page(tree, contents, resources)))

    builder.set(tree, _page_tree(kids))
    builder.set(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % tree)
    return builder.write(path, catalog)


def write_merged_like(path: Path, titles: Sequence[str], pages_each: int) -> Path:
    """Write a PDF shaped like a merge result: one flat page tree and one
    top-level bookmark per input, pointing at that input's first page.

    Args:
        path: Where to write.
        titles: Bookmark title of each input, in order.
        pages_each: Pages per input.

    Returns:
        `path`.
    """
    builder = PdfBuilder()
    catalog = builder.reserve()
    tree = builder.reserve()
    outlines = builder.reserve()
    font = builder.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    resources = b"/Font << /F1 %d 0 R >>" % font

    kids = []
    for number in range(len(titles) * pages_each):
        text = b"BT /F1 12 Tf 72 720 Td (page %d) Tj ET" % (number + 1)
        contents = builder.add_stream(text)
        kids.append(builder.add(_page(tree, contents, resources)))

    firsts = [kids[index * pages_each] for index in range(len(titles))]
    items = _add_outline(builder, outlines, titles, firsts)
    builder.set(tree, _page_tree(kids))
    builder.set(
        outlines,
        b"<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count %d >>"
        % (items[0], items[-1], len(items)),
    )
    builder.set(
        catalog,
        b"<< /Type /Catalog /Pages %d 0 R /Outlines %d 0 R /PageMode /UseOutlines >>"
        % (tree, outlines),
    )
    return builder.write(path, catalog)


def write_padded_file(path: Path, size: int, seed: int = 0) -> Path:
    """Write a file of exactly `size` bytes that starts with `%PDF-` and ends
    with `%%EOF`, filled with random bytes.

    It passes the header and trailer checks of a download but is not a
    readable PDF; it only serves to move bytes. One random block of 8 MiB is
    repeated, which no transport in the benchmarks compresses.
    """
    head = b"%PDF-1.7\n"
    tail = b"\n%%EOF\n"
    if size < len(head) + len(tail):
        raise ValueError(f"size must be at least {len(head) + len(tail)} bytes")
    block = random.Random(seed).randbytes(PADDING_BLOCK_BYTES)
    remaining = size - len(head) - len(tail)
    with path.open("wb") as file:
        file.write(head)
        while remaining > 0:
            remaining -= file.write(block[: min(remaining, len(block))])
        file.write(tail)
    return path


def _add_image(builder: PdfBuilder, size: int, seed: int) -> int:
    rows = -(-size // IMAGE_WIDTH)
    pixels = random.Random(seed).randbytes(rows * IMAGE_WIDTH)
    extra = (
        b"/Type /XObject /Subtype /Image /Width %d /Height %d "
        b"/ColorSpace /DeviceGray /BitsPerComponent 8 " % (IMAGE_WIDTH, rows)
    )
    return builder.add_stream(pixels, extra)


def _add_outline(
    builder: PdfBuilder, parent: int, titles: Sequence[str], pages: Sequence[int]
) -> list[int]:
    items = [builder.reserve() for _ in titles]
    for index, (item, title, page) in enumerate(zip(items, titles, pages, strict=True)):
        links = b""
        if index > 0:
            links += b" /Prev %d 0 R" % items[index - 1]
        if index + 1 < len(items):
            links += b" /Next %d 0 R" % items[index + 1]
        encoded = _escape(title.encode("latin-1", "replace"))
        builder.set(
            item,
            b"<< /Title (%s) /Parent %d 0 R /Dest [%d 0 R /Fit]%s >>"
            % (encoded, parent, page, links),
        )
    return items


def _page(tree: int, contents: int, resources: bytes) -> bytes:
    return b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] " % (
        tree,
        PAGE_WIDTH,
        PAGE_HEIGHT,
    ) + b"/Contents %d 0 R /Resources << %s >> >>" % (contents, resources)


def _page_tree(kids: Sequence[int]) -> bytes:
    references = b" ".join(b"%d 0 R" % kid for kid in kids)
    return b"<< /Type /Pages /Kids [%s] /Count %d >>" % (references, len(kids))


def _escape(text: bytes) -> bytes:
    return text.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
