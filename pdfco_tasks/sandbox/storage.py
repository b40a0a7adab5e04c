"""Files on disk behind the sandbox's upload and result URLs."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import string
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ID_ALPHABET = string.ascii_uppercase + string.digits
OBJECT_ID_PATTERN = re.compile(r"^[A-Z0-9]{32}(--\d+-\d+)?$")
MAX_NAME_LENGTH = 200
DEFAULT_NAME = "file"


def new_object_id() -> str:
    """Return 32 random upper-case letters and digits, the PDF.co id shape."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(32))


def sanitize_name(name: str | None, default: str = DEFAULT_NAME) -> str:
    """Reduce a client-supplied file name to a safe base name.

    Directory parts (with `/` or `\\`), control characters and leading dots are
    dropped, so the name can never leave its object directory.

    Args:
        name: The name the client sent.
        default: Name used when nothing usable is left.

    Returns:
        A non-empty base name of at most 200 characters.
    """
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    return base[:MAX_NAME_LENGTH] or default


@dataclass
class StoredObject:
    """One file behind a sandbox URL.

    Attributes:
        object_id: First path segment of the URL (upload id or job id).
        name: File name, the second path segment.
        path: Location on disk.
        kind: `upload` or `result`.
        owner: API key that created it.
        expires_at: Sandbox-clock time after which the file is gone.
        ready: False until the PUT finished (uploads) or the job succeeded
            (results).
        size: Bytes on disk once ready.
        available_at: Sandbox-clock time before which a ready result is still
            hidden, because its job reports `working` until then.
    """

    object_id: str
    name: str
    path: Path
    kind: str
    owner: str
    expires_at: float
    ready: bool = False
    size: int = 0
    available_at: float = 0.0

    def readable(self, now: float) -> bool:
        """Return True if the file may be downloaded at sandbox time `now`."""
        return self.ready and self.available_at <= now <= self.expires_at


class Storage:
    """A directory of objects plus an in-memory index of their metadata.

    Args:
        root: Directory that contains one sub-directory per object.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects_dir = root / "objects"
        self.work_dir = root / "work"
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._objects: dict[str, StoredObject] = {}
        self._lock = threading.Lock()

    def reserve(
        self,
        object_id: str,
        name: str,
        kind: str,
        owner: str,
        expires_at: float,
        available_at: float = 0.0,
    ) -> StoredObject:
        """Register an object whose content arrives later.

        Args:
            object_id: Upload id or job id.
            name: Sanitized file name.
            kind: `upload` or `result`.
            owner: API key of the creator.
            expires_at: Sandbox-clock expiry.
            available_at: Sandbox-clock time before which the file stays hidden.

        Returns:
            The new, not yet ready, object.
        """
        directory = self.objects_dir / object_id
        directory.mkdir(parents=True, exist_ok=True)
        stored = StoredObject(
            object_id,
            name,
            directory / name,
            kind,
            owner,
            expires_at,
            available_at=available_at,
        )
        with self._lock:
            self._objects[object_id] = stored
        return stored

    def get(self, object_id: str) -> StoredObject | None:
        """Return the object with this id, or None."""
        with self._lock:
            return self._objects.get(object_id)

    def temp_path(self, stored: StoredObject) -> Path:
        """Return a fresh path beside the object for writing before a rename."""
        token = secrets.token_hex(8)
        return stored.path.with_name(f".{stored.name}.{token}.part")

    def commit(self, stored: StoredObject, written: Path, expires_at: float) -> None:
        """Move a fully written file into place and mark the object ready.

        Args:
            stored: The reserved object.
            written: Temporary file produced by the writer.
            expires_at: Sandbox-clock expiry from now on.
        """
        os.replace(written, stored.path)
        with self._lock:
            stored.size = stored.path.stat().st_size
            stored.expires_at = expires_at
            stored.ready = True

    def delete(self, object_id: str) -> bool:
        """Remove an object and its file; return False if it did not exist."""
        with self._lock:
            stored = self._objects.pop(object_id, None)
        if stored is None:
            return False
        shutil.rmtree(stored.path.parent, ignore_errors=True)
        return True

    def purge_expired(self, now: float) -> int:
        """Delete every object whose expiry has passed and return how many."""
        with self._lock:
            objects = self._objects.values()
            expired = [item.object_id for item in objects if item.expires_at < now]
        for object_id in expired:
            self.delete(object_id)
        return len(expired)

    def make_work_dir(self) -> Path:
        """Create and return a private scratch directory for one job."""
        path = self.work_dir / secrets.token_hex(8)
        path.mkdir()
        return path

    def __iter__(self) -> Iterator[StoredObject]:
        with self._lock:
            return iter(list(self._objects.values()))
