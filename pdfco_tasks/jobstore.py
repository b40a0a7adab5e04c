"""Persisted merge jobs and uploads, so a re-run resumes instead of paying again.

The store is one small JSON file. A process that is killed while it waits for a
merge finds the job id here on its next run and polls the same job instead of
submitting a second one. Uploads of identical content are reused while PDF.co
still keeps the file.

Every read-modify-write holds an exclusive `fcntl` lock on a sibling `.lock`
file, and every write replaces the JSON file atomically through a temporary
file and `os.replace`, so threads and processes can share one store.

A `jobs.json` that cannot be read or parsed is renamed to
`jobs.json.corrupt-<UTC time>` with a warning, and the store starts empty. An
unusable directory, lock file or write raises `ConfigurationError`.

API keys are never written. Entries are scoped by the base URL and a SHA-256
fingerprint of the key, so two accounts never share an entry. Upload entries
contain the signed URLs of the uploaded files, so the file is created with
mode 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from pdfco_tasks.exceptions import ConfigurationError
from pdfco_tasks.models import MergeJob, UploadedFile
from pdfco_tasks.settings import PdfcoSettings, default_state_dir

__all__ = [
    "UPLOAD_LIFETIME",
    "JobStore",
    "default_store_path",
    "key_fingerprint",
    "merge_key",
    "upload_key",
    "url_hash",
]

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T", MergeJob, UploadedFile)

logger = logging.getLogger("pdfco_tasks")

UPLOAD_LIFETIME = 3600.0
"""Seconds after an upload at which PDF.co deletes the file."""

_FORMAT_VERSION = 1


def default_store_path(environ: Mapping[str, str]) -> Path:
    """Return the default store file: `jobs.json` in the state directory.

    The state directory is `$PDFCO_TASKS_HOME` when set, else
    `~/.cache/pdfco-tasks`.

    Args:
        environ: The environment to read, usually `os.environ`.

    Returns:
        Path of the JSON file; it need not exist yet.
    """
    return default_state_dir(environ) / "jobs.json"


def key_fingerprint(api_key: str) -> str:
    """Return a SHA-256 fingerprint of an API key, which scopes store entries."""
    return hashlib.sha256(f"pdfco-tasks:{api_key}".encode()).hexdigest()


def url_hash(url: str) -> str:
    """Return the SHA-256 of a URL's text, the content hash of a URL input."""
    return hashlib.sha256(url.encode()).hexdigest()


def merge_key(
    base_url: str | PdfcoSettings,
    input_hashes: Sequence[str],
    options: Mapping[str, Any],
    *,
    account: str = "",
) -> str:
    """Return the store key of one merge.

    Two merges get the same key only when they go to the same API with the same
    account, the same inputs in the same order and the same options.

    Args:
        base_url: The API root, such as `https://api.pdf.co/v1`, or the
            settings, whose base URL and key fingerprint are then used.
        input_hashes: SHA-256 of each input in merge order; for URL inputs the
            hash of the URL text (`url_hash`).
        options: Output name, expiration, endpoint, bookmarks and any other
            option that changes the result. Values must be JSON-serialisable.
        account: Fingerprint of the API key (`key_fingerprint`); taken from
            the settings when those are given and this is empty.

    Returns:
        A hex SHA-256 digest.
    """
    if isinstance(base_url, PdfcoSettings):
        account = account or key_fingerprint(base_url.api_key)
        base_url = base_url.base_url
    document = {
        "base_url": base_url.rstrip("/"),
        "account": account,
        "inputs": list(input_hashes),
        "options": dict(options),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def upload_key(base_url: str, sha256: str, *, account: str = "") -> str:
    """Return the store key of an upload of content with digest `sha256`."""
    text = "\n".join((base_url.rstrip("/"), account, sha256))
    return hashlib.sha256(text.encode()).hexdigest()


class JobStore:
    """Merge jobs and uploads persisted in a JSON file.

    Entries stop being returned `margin` seconds before the resource on PDF.co
    expires, so a caller never starts work with a link that dies midway.
    Expired entries are removed whenever the store is written.

    Args:
        path: The JSON file; its directory is created on first use.
        margin: Seconds before expiry at which entries are no longer returned.
        clock: Current time in epoch seconds, used to prune on write.

    Example:
        >>> store = JobStore(default_store_path(os.environ))
        >>> job = store.find_job(key, time.time())
    """

    def __init__(
        self,
        path: Path,
        *,
        margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.margin = margin
        self._clock = clock
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._thread_lock = threading.Lock()

    def check(self) -> None:
        """Create the store's directory, take its lock once and probe a write.

        Call it before spending credits, so an unusable store fails a run
        before the first upload rather than after it.

        Raises:
            ConfigurationError: When the directory cannot be created, the lock
                file cannot be opened or locked, or no file can be written
                beside the store.
        """
        with self._locked():
            try:
                with tempfile.TemporaryFile(
                    dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".probe"
                ):
                    pass
            except OSError as exc:
                raise self._unusable(exc) from exc

    def find_job(self, key: str, now: float) -> MergeJob | None:
        """Return the stored job of `key` while its result link stays valid.

        Args:
            key: A `merge_key`.
            now: Current time in epoch seconds.

        Returns:
            The job, or `None` when absent or within `margin` of its expiry.
        """
        with self._locked():
            entry = self._read()["jobs"].get(key)
        if entry is None:
            return None
        job = _build(MergeJob, entry)
        if job is None or now >= job.expires_at - self.margin:
            return None
        return job

    def save_job(self, key: str, job: MergeJob) -> None:
        """Store `job` under `key`, replacing any earlier job of that key."""
        entry = job.to_dict()
        entry["resumed"] = False
        with self._locked():
            data = self._read()
            data["jobs"][key] = entry
            self._write(data)

    def forget_job(self, key: str) -> None:
        """Remove the job of `key`, if any, so the next run submits again."""
        with self._locked():
            data = self._read()
            if data["jobs"].pop(key, None) is not None:
                self._write(data)

    def forget_job_id(self, job_id: str) -> None:
        """Remove every entry of the job `job_id`, whatever its key."""
        with self._locked():
            data = self._read()
            jobs: dict[str, Any] = data["jobs"]
            stale = [key for key, entry in jobs.items() if _job_id(entry) == job_id]
            for key in stale:
                del jobs[key]
            if stale:
                self._write(data)

    def find_upload(
        self, base_url: str, sha256: str, now: float, *, account: str = ""
    ) -> UploadedFile | None:
        """Return an earlier upload of the same content while PDF.co keeps it.

        Args:
            base_url: The API root the upload went to.
            sha256: Digest of the content.
            now: Current time in epoch seconds.
            account: Fingerprint of the API key (`key_fingerprint`).

        Returns:
            The upload, or `None` when absent or within `margin` of the
            one-hour lifetime of uploaded files.
        """
        key = upload_key(base_url, sha256, account=account)
        with self._locked():
            entry = self._read()["uploads"].get(key)
        if entry is None:
            return None
        upload = _build(UploadedFile, entry)
        if upload is None:
            return None
        deadline = min(upload.expires_at, upload.uploaded_at + UPLOAD_LIFETIME)
        if now >= deadline - self.margin:
            return None
        return upload

    def save_upload(
        self, base_url: str, upload: UploadedFile, *, account: str = ""
    ) -> None:
        """Store `upload` under its content digest.

        Raises:
            ValueError: When the upload has no `sha256`.
        """
        if not upload.sha256:
            raise ValueError(
                f"upload of {upload.source} has no sha256; only uploads with a "
                "content digest can be stored."
            )
        key = upload_key(base_url, upload.sha256, account=account)
        with self._locked():
            data = self._read()
            data["uploads"][key] = upload.to_dict()
            self._write(data)

    def forget_upload(self, url: str) -> None:
        """Remove every upload entry whose file URL is `url`."""
        with self._locked():
            data = self._read()
            uploads: dict[str, Any] = data["uploads"]
            stale = [key for key, entry in uploads.items() if entry.get("url") == url]
            for key in stale:
                del uploads[key]
            if stale:
                self._write(data)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            descriptor = self._acquire_lock()
            try:
                yield
            finally:
                if descriptor is not None:
                    os.close(descriptor)

    def _acquire_lock(self) -> int | None:
        """Create the directory and lock the `.lock` file; return its descriptor."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if fcntl is None:
                # NOTE: Without fcntl (Windows) only the threads of one process
                # are serialised; two processes may lose each other's writes.
                return None
            descriptor = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._unusable(exc) from exc

        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except OSError as exc:
            os.close(descriptor)
            raise self._unusable(exc) from exc
        return descriptor

    def _unusable(self, exc: OSError) -> ConfigurationError:
        reason = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        return ConfigurationError(
            f"Cannot use the job store {self.path}: {reason}{where}. Set "
            "PDFCO_TASKS_HOME to a writable directory, or pass one as the "
            "state_dir setting.",
            path=str(self.path),
        )

    def _read(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return _empty()
        except OSError as exc:
            return self._set_aside(f"cannot be read: {exc.strerror or exc}")

        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return self._set_aside("is not UTF-8 text")
        except (json.JSONDecodeError, RecursionError) as exc:
            return self._set_aside(f"is not valid JSON: {exc}")

        problem = _shape_problem(data)
        if problem:
            return self._set_aside(problem)
        document: dict[str, Any] = data
        document.setdefault("jobs", {})
        document.setdefault("uploads", {})
        return document

    def _set_aside(self, problem: str) -> dict[str, Any]:
        """Rename a damaged store file so its entries are kept, and start empty.

        Raises:
            ConfigurationError: When the file cannot be renamed.
        """
        moment = datetime.fromtimestamp(self._clock(), tz=timezone.utc)
        stamp = moment.strftime("%Y%m%dT%H%M%S.%fZ")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            os.rename(self.path, target)
        except OSError as exc:
            raise ConfigurationError(
                f"The job store {self.path} {problem}, and renaming it to "
                f"{target.name} failed: {exc.strerror or exc}. Move or delete "
                "the file, or set PDFCO_TASKS_HOME to a writable directory.",
                path=str(self.path),
            ) from exc

        logger.warning(
            "job store %s %s; moved it to %s and started an empty store",
            self.path,
            problem,
            target,
        )
        return _empty()

    def _write(self, data: dict[str, Any]) -> None:
        _prune(data, self._clock())
        text = json.dumps(data, indent=1, sort_keys=True)
        temporary: str | None = None
        try:
            with tempfile.NamedTemporaryFile(
                "w",
                encoding="utf-8",
                dir=self.path.parent,
                prefix=f".{self.path.name}.",
                suffix=".tmp",
                delete=False,
            ) as handle:
                temporary = handle.name
                os.chmod(temporary, 0o600)
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException as exc:
            if temporary is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
            if isinstance(exc, OSError):
                raise self._unusable(exc) from exc
            raise


def _empty() -> dict[str, Any]:
    return {"version": _FORMAT_VERSION, "jobs": {}, "uploads": {}}


def _shape_problem(data: Any) -> str:
    """Return what is wrong with the parsed store document, or ""."""
    if not isinstance(data, dict):
        return "is not a JSON object"
    if data.get("version") != _FORMAT_VERSION:
        return f"has format version {data.get('version')!r}, not {_FORMAT_VERSION}"
    for section in ("jobs", "uploads"):
        if not isinstance(data.get(section, {}), dict):
            return f"has a '{section}' entry that is not an object"
    return ""


def _prune(data: dict[str, Any], now: float) -> None:
    jobs: dict[str, Any] = data["jobs"]
    for key in [key for key, entry in jobs.items() if _expired(entry, now)]:
        del jobs[key]

    uploads: dict[str, Any] = data["uploads"]
    for key in [key for key, entry in uploads.items() if _expired(entry, now)]:
        del uploads[key]


def _job_id(entry: Any) -> Any:
    return entry.get("job_id") if isinstance(entry, dict) else None


def _expired(entry: Any, now: float) -> bool:
    if not isinstance(entry, dict):
        return True
    expires_at = entry.get("expires_at")
    if not isinstance(expires_at, int | float):
        return True
    return now >= expires_at


def _build(cls: type[T], entry: Any) -> T | None:
    """Rebuild a dataclass from a stored entry, or return `None` if it is damaged."""
    if not isinstance(entry, dict):
        return None
    names = {item.name for item in fields(cls)}
    try:
        return cls(**{key: value for key, value in entry.items() if key in names})
    except TypeError:
        return None
