"""The `info` object of `/v1/pdf/info`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from pdfco_tasks.sandbox.errors import InputError


def pdf_info(path: Path, label: str, password: str = "") -> dict[str, Any]:
    """Read page count, metadata and encryption facts of a PDF.

    Args:
        path: The PDF file.
        label: Input name for messages.
        password: User password for an encrypted PDF.

    Returns:
        The `info` object, with `PageCount` among its keys.

    Raises:
        InputError: 441 if the password is missing or wrong, 442 if the file is
            damaged or not a PDF.
    """
    try:
        reader = PdfReader(path)
        encrypted = reader.is_encrypted
        if encrypted and not reader.decrypt(password):
            raise InputError(
                441,
                f"Input {label} is protected by a password; "
                "pass the right one in 'password'",
            )
        page_count = len(reader.pages)
        metadata: dict[str, Any] = dict(reader.metadata or {})
        box = reader.pages[0].mediabox if page_count else None
    except InputError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise InputError(
            442, f"Input {label} is damaged or not a valid PDF ({type(exc).__name__})"
        ) from exc
    return {
        "PageCount": page_count,
        "Author": str(metadata.get("/Author", "")),
        "Title": str(metadata.get("/Title", "")),
        "Producer": str(metadata.get("/Producer", "")),
        "Subject": str(metadata.get("/Subject", "")),
        "Creator": str(metadata.get("/Creator", "")),
        "Encrypted": encrypted,
        "PageRectangle": {
            "Left": float(box.left) if box else 0.0,
            "Top": float(box.bottom) if box else 0.0,
            "Width": float(box.width) if box else 0.0,
            "Height": float(box.height) if box else 0.0,
        },
    }
