"""Small input documents built in memory for the sandbox tests."""

from __future__ import annotations

import io
import zipfile

from PIL import Image
from pypdf import PdfWriter

DOCX_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.'
    'org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)
WORD_NAMESPACE = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
EXIF_ORIENTATION_TAG = 0x0112


def pdf_bytes(
    pages: int,
    width: float = 200,
    height: float = 300,
    user_password: str | None = None,
    owner_password: str | None = None,
) -> bytes:
    """Return a PDF of blank pages, encrypted when a password is given."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=width, height=height)
    if user_password is not None or owner_password is not None:
        writer.encrypt(
            user_password=user_password or "",
            owner_password=owner_password,
            algorithm="AES-128",
        )
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def image_bytes(
    image_format: str,
    size: tuple[int, int] = (40, 20),
    frames: int = 1,
    orientation: int | None = None,
) -> bytes:
    """Return an image; GIF and TIFF get `frames` frames of distinct colours."""
    images = [
        Image.new("RGB", size, (40 * index % 256, 90, 160)) for index in range(frames)
    ]
    buffer = io.BytesIO()
    options: dict[str, object] = {}
    if frames > 1:
        options = {"save_all": True, "append_images": images[1:]}
    if orientation is not None:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION_TAG] = orientation
        options["exif"] = exif
    images[0].save(buffer, image_format, **options)
    return buffer.getvalue()


def docx_bytes(pages: int) -> bytes:
    """Return a minimal DOCX whose paragraphs are split by `pages - 1` page breaks."""
    paragraphs = []
    for index in range(pages):
        if index:
            paragraphs.append('<w:p><w:r><w:br w:type="page"/></w:r></w:p>')
        paragraphs.append(f"<w:p><w:r><w:t>Page {index + 1}</w:t></w:r></w:p>")
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{WORD_NAMESPACE}"><w:body>'
        f"{''.join(paragraphs)}</w:body></w:document>"
    )
    return zip_bytes(
        {
            "[Content_Types].xml": DOCX_CONTENT_TYPES.encode(),
            "_rels/.rels": DOCX_RELS.encode(),
            "word/document.xml": document.encode(),
        }
    )


def zip_bytes(members: dict[str, bytes], encrypted_flag: bool = False) -> bytes:
    """Return a ZIP archive with the members in the order given.

    Args:
        members: Content by member name; a name ending in `/` is a directory.
        encrypted_flag: Mark every member as encrypted, as a password-protected
            archive does.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    data = bytearray(buffer.getvalue())
    if encrypted_flag:
        # zipfile cannot encrypt, so set bit 0 of the general purpose flags in
        # every local header (offset 6) and central directory entry (offset 8).
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            start = data.find(signature)
            while start != -1:
                data[start + offset] |= 0x1
                start = data.find(signature, start + 4)
    return bytes(data)


def heic_bytes() -> bytes:
    """Return the start of a HEIC file: enough for format detection."""
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
