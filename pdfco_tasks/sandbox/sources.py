"""Merge input sources: the sandbox's own file URLs and loopback URLs."""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import requests

from pdfco_tasks.sandbox.errors import ApiError, InputError
from pdfco_tasks.sandbox.signing import UrlSigner
from pdfco_tasks.sandbox.storage import OBJECT_ID_PATTERN, Storage

MAX_TOTAL_INPUT_BYTES = 2 * 1024**3
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
FETCH_TIMEOUT = (5.0, 60.0)
CACHE_PREFIX = "cache:"


@dataclass(frozen=True)
class Source:
    """One input URL of a merge.

    Attributes:
        url: The URL without its `cache:` prefix.
        label: File name taken from the URL path, for messages and bookmarks.
        own_object_id: Object id when the URL points at this sandbox, else None.
    """

    url: str
    label: str
    own_object_id: str | None


def is_loopback(host: str) -> bool:
    """Return True for `localhost` and addresses in 127.0.0.0/8 or ::1."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def label_of(url: str) -> str:
    """Return a URL's file name (or host) without the query, safe for messages.

    For a URL that `urlsplit` rejects, such as one with an unclosed `[`, return
    the last path segment of the text before any `?` or `#`.
    """
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        path = url.split("?", 1)[0].split("#", 1)[0]
        return unquote(posixpath.basename(path)) or "input"
    name = unquote(posixpath.basename(parts.path))
    return name or hostname or "input"


def parse_sources(text: str, own_port: int) -> list[Source]:
    """Split the comma-separated `url` parameter into checked sources.

    Args:
        text: Value of `url`; empty items are skipped.
        own_port: Port of this sandbox, to recognise its own file URLs.

    Returns:
        The sources in the order given.

    Raises:
        ApiError: 400 if nothing is left, a URL is malformed or it points off
            the machine.
    """
    sources = [
        parse_source(item.strip(), own_port) for item in text.split(",") if item.strip()
    ]
    if not sources:
        raise ApiError(
            400,
            "Parameter 'url' is required: give one or more comma-separated input URLs",
        )
    return sources


def parse_source(item: str, own_port: int) -> Source:
    """Check one input URL; see `parse_sources`."""
    url = item[len(CACHE_PREFIX) :] if item.lower().startswith(CACHE_PREFIX) else item
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ApiError(400, f"Invalid input URL: {label_of(url)!r}") from None
    label = label_of(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(
            400,
            f"Invalid input URL for {label}: only http and https URLs are supported",
        )
    if not is_loopback(parts.hostname):
        raise ApiError(
            400,
            f"Input {label} is on host {parts.hostname}, which the "
            "sandbox cannot reach: it only reads its own file URLs "
            "and loopback URLs (127.0.0.0/8, localhost, ::1)",
        )
    return Source(url, label, _own_object_id(parts.path, port, own_port))


def _own_object_id(path: str, port: int, own_port: int) -> str | None:
    segments = unquote(path).strip("/").split("/")
    if port != own_port or len(segments) != 2:
        return None
    return segments[0] if OBJECT_ID_PATTERN.match(segments[0]) else None


class SourceFetcher:
    """Brings merge inputs to local paths without reaching off the machine.

    Args:
        storage: The sandbox storage, for its own file URLs.
        signer: Checks the signatures of its own file URLs.
        now: Returns the sandbox-clock time.
        limit: Bytes all inputs of one request may take together.
    """

    def __init__(
        self,
        storage: Storage,
        signer: UrlSigner,
        now: Callable[[], float],
        limit: int = MAX_TOTAL_INPUT_BYTES,
    ) -> None:
        self.storage = storage
        self.signer = signer
        self.now = now
        self.limit = limit

    def own_size(self, source: Source) -> int:
        """Return the size of an own, ready file, or 0 when not known yet."""
        if source.own_object_id is None:
            return 0
        stored = self.storage.get(source.own_object_id)
        return stored.size if stored is not None and stored.ready else 0

    def fetch(
        self,
        source: Source,
        work_dir: Path,
        budget: int,
        auth: tuple[str, str] | None = None,
    ) -> Path:
        """Return a local path with the content of `source`.

        Args:
            source: The input.
            work_dir: Directory for downloaded copies.
            budget: Bytes the input may still take under the total limit.
            auth: HTTP basic credentials for loopback URLs.

        Raises:
            InputError: 400 if the file cannot be read or is over the budget.
        """
        if source.own_object_id is not None:
            path = self._own_file(source)
            size = path.stat().st_size
        else:
            path, size = self._download(source, work_dir, budget, auth)
        if size > budget:
            raise too_large(self.limit)
        return path

    def _own_file(self, source: Source) -> Path:
        parts = urlsplit(source.url)
        params = dict(parse_qsl(parts.query))
        check = self.signer.check("GET", unquote(parts.path), params, self.now())
        if not check.valid:
            raise InputError(
                400, f"Cannot read input {source.label}: {check.message} ({check.code})"
            )
        assert source.own_object_id is not None
        stored = self.storage.get(source.own_object_id)
        if stored is None or not stored.readable(self.now()):
            raise InputError(
                400,
                f"Cannot read input {source.label}: the file "
                "does not exist or has expired",
            )
        return stored.path

    def _download(
        self,
        source: Source,
        work_dir: Path,
        budget: int,
        auth: tuple[str, str] | None,
    ) -> tuple[Path, int]:
        target = work_dir / f"download-{len(list(work_dir.iterdir()))}"
        size = 0
        try:
            with requests.get(
                source.url,
                stream=True,
                timeout=FETCH_TIMEOUT,
                auth=auth,
                allow_redirects=False,
            ) as response:
                if response.status_code != 200:
                    raise InputError(
                        400,
                        f"Cannot read input {source.label}: its "
                        f"URL returned HTTP {response.status_code}",
                    )
                with target.open("wb") as file:
                    for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                        size += len(chunk)
                        if size > budget:
                            raise too_large(self.limit)
                        file.write(chunk)
        except requests.RequestException as exc:
            raise InputError(
                400, f"Cannot read input {source.label}: {type(exc).__name__}"
            ) from None
        return target, size


def describe_bytes(size: int) -> str:
    """Return a byte count as `2 GB`, `5 MB` or `1234 bytes`."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def too_large(limit: int) -> ApiError:
    """Return the 400 error for inputs over `limit` bytes in total."""
    return ApiError(
        400,
        f"The total size of the input files exceeds the {describe_bytes(limit)} limit",
    )
