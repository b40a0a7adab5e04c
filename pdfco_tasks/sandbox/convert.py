"""Turn one input file into PDF pages: PDFs as they are, images, office files, ZIPs.

Images go through Pillow (one page per frame, EXIF orientation applied), office
formats through LibreOffice in headless mode, and ZIP members through the same
rules in name order.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import signal
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from pdfco_tasks.sandbox.errors import InputError

logger = logging.getLogger("pdfco_tasks.sandbox")

IMAGE_KINDS = frozenset({"png", "jpeg", "gif", "bmp", "tiff"})
OFFICE_KINDS = frozenset({"doc", "docx", "xls", "xlsx", "rtf", "txt"})
MERGE2_KINDS = frozenset({"pdf", "zip"}) | IMAGE_KINDS | OFFICE_KINDS
EXTENSION_KINDS = {
    "pdf": "pdf",
    "png": "png",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "gif": "gif",
    "bmp": "bmp",
    "tif": "tiff",
    "tiff": "tiff",
    "doc": "doc",
    "docx": "docx",
    "xls": "xls",
    "xlsx": "xlsx",
    "rtf": "rtf",
    "txt": "txt",
    "zip": "zip",
}
REJECTED_IMAGE_EXTENSIONS = {"heic": "HEIC", "heif": "HEIC", "webp": "WEBP"}
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1")
IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
HEAD_SIZE = 4096
DEFAULT_IMAGE_DPI = 72.0


@dataclass(frozen=True)
class Piece:
    """One PDF that contributes pages to a merge.

    Attributes:
        path: The PDF file on disk.
        label: Input name used in error messages and bookmarks.
    """

    path: Path
    label: str


def extension_of(name: str) -> str:
    """Return the lower-case extension of `name` without the dot."""
    suffix = PurePosixPath(name).suffix
    return suffix[1:].lower() if suffix else ""


def detect_kind(path: Path, label: str) -> str:
    """Return the kind of an input from its content, helped by its extension.

    Args:
        path: The file on disk.
        label: Input name for messages; its extension breaks ties between formats
            that share a container (DOC/XLS, DOCX/XLSX/ZIP) and marks text files.

    Returns:
        One of `pdf`, `zip`, an image kind or an office kind.

    Raises:
        InputError: 415 for HEIC, WEBP and unknown formats.
    """
    with path.open("rb") as file:
        head = file.read(HEAD_SIZE)
    extension = extension_of(label)
    if head.startswith(b"%PDF"):
        return "pdf"
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        raise _unsupported(label, "HEIC images are not supported")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        raise _unsupported(label, "WEBP images are not supported")
    for signature, kind in IMAGE_SIGNATURES:
        if head.startswith(signature):
            return kind
    if head.startswith(ZIP_SIGNATURES):
        return _zip_kind(path, extension)
    if head.startswith(OLE2_SIGNATURE):
        _check_ole2_header(head, label)
        return "xls" if extension == "xls" else "doc"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if b"%PDF" in head[:1024]:
        # PDF readers accept junk before the header, so PDF.co likely does too.
        return "pdf"
    return _kind_from_extension(head, extension, label)


def _check_ole2_header(head: bytes, label: str) -> None:
    # LibreOffice imports a broken DOC or XLS as plain text instead of failing,
    # so the compound-file header is checked here: byte order mark FE FF at
    # offset 28 and major version 3 or 4 at offset 26.
    major_version = int.from_bytes(head[26:28], "little")
    if head[28:30] != b"\xfe\xff" or major_version not in (3, 4):
        raise InputError(
            442, f"Input {label} is damaged: its OLE2 compound-file header is invalid"
        )


def _zip_kind(path: Path, extension: str) -> str:
    if extension in ("docx", "xlsx"):
        return extension
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        return "zip"
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    return "zip"


def _kind_from_extension(head: bytes, extension: str, label: str) -> str:
    if extension in REJECTED_IMAGE_EXTENSIONS:
        image = REJECTED_IMAGE_EXTENSIONS[extension]
        raise _unsupported(label, f"{image} images are not supported")
    if extension == "pdf":
        raise InputError(442, f"Input {label} is damaged or not a PDF file")
    kind = EXTENSION_KINDS.get(extension)
    if kind == "txt" or (kind is None and _looks_like_text(head)):
        return "txt"
    if kind is not None:
        raise InputError(
            442,
            f"Input {label} is damaged: its content is not "
            f"a valid {extension.upper()} file",
        )
    raise _unsupported(label, "the file type is not supported")


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3
    return True


def _unsupported(label: str, reason: str) -> InputError:
    return InputError(
        415,
        f"Unsupported input {label}: {reason}. Supported types: "
        "PDF, DOC, DOCX, XLS, XLSX, RTF, TXT, PNG, JPG, GIF, "
        "BMP, TIFF and ZIP",
    )


def open_pdf(path: Path, label: str) -> PdfReader:
    """Open a PDF for reading, decrypting it with an empty user password if needed.

    Raises:
        InputError: 441 if a password is required, 442 if the file is damaged.
    """
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError(
                441,
                f"Input {label} is protected by a password; "
                "remove the password before merging",
            )
        _ = len(reader.pages)
    except InputError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise InputError(
            442, f"Input {label} is damaged or not a valid PDF ({type(exc).__name__})"
        ) from exc
    return reader


def image_to_pdf(path: Path, output: Path, label: str) -> None:
    """Write one PDF page per frame of an image, honouring its EXIF orientation.

    Raises:
        InputError: 442 if Pillow cannot read the image.
    """
    try:
        with Image.open(path) as image:
            dpi = _resolution(image)
            frames = [_page_image(frame) for frame in ImageSequence.Iterator(image)]
        first, rest = frames[0], frames[1:]
        first.save(output, "PDF", save_all=True, append_images=rest, resolution=dpi)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(
            442, f"Input {label} is a damaged image ({type(exc).__name__})"
        ) from exc


def _resolution(image: Image.Image) -> float:
    dpi = image.info.get("dpi")
    try:
        value = float(dpi[0]) if dpi else DEFAULT_IMAGE_DPI
    except (TypeError, ValueError, IndexError):
        value = DEFAULT_IMAGE_DPI
    return value if value >= 1 else DEFAULT_IMAGE_DPI


def _page_image(frame: Image.Image) -> Image.Image:
    upright = ImageOps.exif_transpose(frame.copy())
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        page = Image.new("RGB", rgba.size, "white")
        page.paste(rgba, mask=rgba.getchannel("A"))
        return page
    if upright.mode in ("RGB", "L", "CMYK"):
        return upright
    return upright.convert("RGB")


class OfficeConverter:
    """Runs LibreOffice conversions, each with a private user profile.

    LibreOffice refuses to run twice on one profile, so the converter keeps one
    profile directory per worker and hands them out for each conversion.

    Args:
        profiles_dir: Directory that contains the profiles.
        workers: Number of conversions that may run at once.
        timeout: Seconds before a conversion is killed.
        binary: The soffice executable.
    """

    def __init__(
        self, profiles_dir: Path, workers: int, timeout: float, binary: str = "soffice"
    ) -> None:
        self.timeout = timeout
        self.binary = binary
        self._profiles: queue.Queue[Path] = queue.Queue()
        for index in range(workers):
            self._profiles.put(profiles_dir / f"profile-{index}")
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._closed = False

    def convert(self, source: Path, kind: str, work_dir: Path, label: str) -> Path:
        """Convert an office file to PDF and return the PDF's path.

        Args:
            source: The input file.
            kind: Office kind, used as the file extension LibreOffice detects.
            work_dir: Empty private directory for the copy and the output.
            label: Input name for messages.

        Raises:
            InputError: 445 on timeout, 442 if no readable PDF was written, 500
                if soffice is not installed.
        """
        if shutil.which(self.binary) is None:
            raise InputError(
                500,
                f"Cannot convert {label}: LibreOffice (soffice) "
                "is not installed on the sandbox host",
            )
        work_dir.mkdir(parents=True, exist_ok=True)
        staged = work_dir / f"input.{kind}"
        _link_or_copy(source, staged)
        with self._profile() as profile:
            self._run(staged, work_dir, profile, label)
        output = work_dir / "input.pdf"
        if not output.is_file() or output.stat().st_size == 0:
            raise InputError(
                442,
                f"Input {label} could not be converted to PDF; the file may be damaged",
            )
        open_pdf(output, label)
        return output

    def close(self) -> None:
        """Kill conversions still running; later conversions fail at once."""
        with self._lock:
            self._closed = True
            processes = list(self._processes)
        for process in processes:
            _kill_group(process)

    @contextmanager
    def _profile(self) -> Iterator[Path]:
        profile = self._profiles.get()
        try:
            yield profile
        finally:
            self._profiles.put(profile)

    def _run(self, staged: Path, out_dir: Path, profile: Path, label: str) -> None:
        command = [
            self.binary,
            f"-env:UserInstallation={profile.resolve().as_uri()}",
            "--headless",
            "--norestore",
            "--nologo",
            "--nodefault",
            "--nolockcheck",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out_dir),
            str(staged),
        ]
        with self._lock:
            if self._closed:
                raise InputError(500, "The sandbox is shutting down")
            process = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            self._processes.add(process)
        try:
            _, stderr = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            raise InputError(
                445,
                f"Timeout error: converting {label} took longer "
                f"than {self.timeout:g} s",
            ) from None
        finally:
            with self._lock:
                self._processes.discard(process)
        if process.returncode != 0:
            logger.warning(
                "soffice failed on %s with exit code %s: %s",
                label,
                process.returncode,
                stderr.decode(errors="replace")[-500:],
            )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
