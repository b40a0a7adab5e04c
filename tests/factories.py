"""Small input documents built on the fly for tests.

Each factory writes one file under the given directory and returns its path.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, NumberObject

_OOXML_PACKAGE = "http://schemas.openxmlformats.org/package/2006"
_OOXML_OFFICE = "http://schemas.openxmlformats.org/officeDocument/2006"
_WORD_MAIN_TYPE = (
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
)
_DOCX_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<Types xmlns="{_OOXML_PACKAGE}/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/word/document.xml" ContentType="{_WORD_MAIN_TYPE}"/>'
    "</Types>"
)
_DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<Relationships xmlns="{_OOXML_PACKAGE}/relationships">'
    f'<Relationship Id="rId1" Type="{_OOXML_OFFICE}/relationships/officeDocument" '
    'Target="word/document.xml"/>'
    "</Relationships>"
)

_PAGE_BREAK = '<w:p><w:r><w:br w:type="page"/></w:r></w:p>'


def make_pdf(
    directory: Path, name: str, pages: int, *, size: tuple[float, float] = (200, 300)
) -> Path:
    """Write a PDF with `pages` blank pages."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=size[0], height=size[1])
    path = directory / name
    with path.open("wb") as file:
        writer.write(file)
    return path


def make_encrypted_pdf(
    directory: Path, name: str, pages: int, *, user_password: str, owner_password: str
) -> Path:
    """Write an encrypted PDF; an empty `user_password` makes it owner-only."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=300)
    writer.encrypt(user_password=user_password, owner_password=owner_password)
    path = directory / name
    with path.open("wb") as file:
        writer.write(file)
    return path


def make_pdf_with_wrong_count(
    directory: Path, name: str, pages: int, stored_count: int
) -> Path:
    """Write a PDF whose page tree contains `pages` pages but claims `stored_count`."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=300)
    pages_node = writer.root_object["/Pages"].get_object()
    assert isinstance(pages_node, DictionaryObject)
    pages_node[NameObject("/Count")] = NumberObject(stored_count)
    path = directory / name
    with path.open("wb") as file:
        writer.write(file)
    return path


def make_image(
    directory: Path, name: str, *, frames: int = 1, size: tuple[int, int] = (64, 48)
) -> Path:
    """Write an image; GIF and TIFF files get `frames` frames."""
    path = directory / name
    colors = ["red", "green", "blue", "yellow", "white", "black"]
    images = [
        Image.new("RGB", size, colors[index % len(colors)]) for index in range(frames)
    ]
    if frames > 1:
        images[0].save(path, save_all=True, append_images=images[1:])
    else:
        images[0].save(path)
    return path


def make_docx(
    directory: Path, name: str, paragraphs: Sequence[str], *, pages: int = 1
) -> Path:
    """Write a minimal DOCX; `pages` > 1 inserts hard page breaks between pages."""
    body_parts: list[str] = []
    for page in range(pages):
        if page:
            body_parts.append(_PAGE_BREAK)
        for text in paragraphs:
            body_parts.append(f"<w:p><w:r><w:t>{_escape(text)}</w:t></w:r></w:p>")
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{''.join(body_parts)}</w:body></w:document>"
    )
    path = directory / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _DOCX_CONTENT_TYPES)
        archive.writestr("_rels/.rels", _DOCX_RELS)
        archive.writestr("word/document.xml", document)
    return path


def make_text(
    directory: Path, name: str, text: str = "Hello from pdfco-tasks.\n"
) -> Path:
    """Write a UTF-8 text file."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def make_zip(directory: Path, name: str, members: dict[str, Path]) -> Path:
    """Write a ZIP whose members are the given files under the given names."""
    path = directory / name
    with zipfile.ZipFile(path, "w") as archive:
        for member_name, source in members.items():
            archive.write(source, member_name)
    return path


def make_pdf_with_bookmarks(
    directory: Path, name: str, pages: int, bookmarks: Sequence[tuple[str, int]]
) -> Path:
    """Write a PDF with top-level bookmarks, each `(title, 0-based page index)`."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=300)
    for title, page_index in bookmarks:
        writer.add_outline_item(title=title, page_number=page_index)
    path = directory / name
    with path.open("wb") as file:
        writer.write(file)
    return path


def write_raw_pdf(path: Path, objects: Sequence[str]) -> Path:
    """Write a PDF whose object `n` has the body `objects[n - 1]`; 1 is the catalog.

    The bodies are written as given, which lets tests build page trees that
    pypdf's writer would not produce: nested, untyped, cyclic or miscounted.
    """
    chunks = [b"%PDF-1.7\n"]
    offsets = []
    position = len(chunks[0])
    for number, body in enumerate(objects, start=1):
        chunk = f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
        offsets.append(position)
        chunks.append(chunk)
        position += len(chunk)

    xref = [f"xref\n0 {len(objects) + 1}\n", "0000000000 65535 f \n"]
    xref += [f"{offset:010d} 00000 n \n" for offset in offsets]
    trailer = (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
        f"startxref\n{position}\n%%EOF\n"
    )
    path.write_bytes(b"".join(chunks) + "".join(xref).encode() + trailer.encode())
    return path


def make_nested_pdf(
    directory: Path, name: str, pages: int, *, fan_out: int = 3
) -> Path:
    """Write a PDF whose page tree nests `/Pages` nodes `fan_out` kids wide.

    Intermediate nodes below the root have no `/Type`, and the root contains the
    `/MediaBox` that every page inherits.
    """
    objects: list[str] = ["<< /Type /Catalog /Pages 2 0 R >>", ""]

    def add(body: str) -> int:
        objects.append(body)
        return len(objects)

    level = [add("<< /Type /Page /Parent 2 0 R >>") for _ in range(pages)]
    counts = [1] * len(level)
    while len(level) > fan_out:
        next_level, next_counts = [], []
        for start in range(0, len(level), fan_out):
            kids = " ".join(
                f"{number} 0 R" for number in level[start : start + fan_out]
            )
            count = sum(counts[start : start + fan_out])
            next_level.append(add(f"<< /Kids [{kids}] /Count {count} /Parent 2 0 R >>"))
            next_counts.append(count)
        level, counts = next_level, next_counts

    kids = " ".join(f"{number} 0 R" for number in level)
    objects[1] = (
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} /MediaBox [0 0 200 300] >>"
    )
    return write_raw_pdf(directory / name, objects)


def make_pdf_with_cycle(directory: Path, name: str) -> Path:
    """Write a PDF whose page tree node 3 lists its own ancestor 2 as a kid."""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 2 /MediaBox [0 0 200 300] >>",
        "<< /Type /Pages /Kids [4 0 R 2 0 R] /Count 2 /Parent 2 0 R >>",
        "<< /Type /Page /Parent 3 0 R >>",
    ]
    return write_raw_pdf(directory / name, objects)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
