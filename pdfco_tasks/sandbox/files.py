"""The presigned file URLs: PUT uploads and GET downloads, S3 style."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from pdfco_tasks.sandbox.core import SandboxCore
from pdfco_tasks.sandbox.faults import DOWNLOAD_FAULTS
from pdfco_tasks.sandbox.sources import describe_bytes
from pdfco_tasks.sandbox.storage import StoredObject
from pdfco_tasks.sandbox.transport import TRANSPORT_KEY, reset_connection

logger = logging.getLogger("pdfco_tasks.sandbox")

UPLOAD_LIFETIME_SECONDS = 3600
READ_CHUNK_BYTES = 256 * 1024


def s3_error(status: int, code: str, message: str) -> Response:
    """Return an S3-style XML error response."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        "</Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


def internal_error() -> Response:
    """Return the S3 500 for an unexpected failure inside the sandbox."""
    return s3_error(
        500, "InternalError", "We encountered an internal error. Please try again."
    )


def no_such_key() -> Response:
    """Return the S3 404 for a file that does not exist (yet)."""
    return s3_error(404, "NoSuchKey", "The specified key does not exist.")


class FileHandlers:
    """PUT and GET on `/<object id>/<name>?X-Amz-...`.

    Args:
        core: The sandbox state.
    """

    def __init__(self, core: SandboxCore) -> None:
        self.core = core

    async def put(self, request: Request) -> Response:
        """Store the request body; an unexpected error becomes an S3 500."""
        try:
            return await self._put(request)
        except Exception:
            logger.exception("internal error in PUT %s", request.scope["path"])
            return internal_error()

    async def get(self, request: Request) -> Response | FileStream:
        """Stream a stored file; an unexpected error becomes an S3 500."""
        try:
            return await self._get(request)
        except Exception:
            logger.exception("internal error in GET %s", request.scope["path"])
            return internal_error()

    async def _put(self, request: Request) -> Response:
        """Store the request body, written to disk chunk by chunk."""
        stored, error = self._authorize(request, "PUT")
        if error is not None:
            return error
        assert stored is not None
        if stored.kind != "upload":
            return s3_error(403, "AccessDenied", "Access Denied")
        limit = self.core.fetcher.limit
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _too_large(limit)
        part = self.core.storage.temp_path(stored)
        try:
            size = await _write_stream(request, part, limit)
        except ClientDisconnect:
            part.unlink(missing_ok=True)
            return s3_error(400, "IncompleteBody", "The request body was cut short.")
        if size > limit:
            part.unlink(missing_ok=True)
            return _too_large(limit)
        expires_at = self.core.clock.now() + UPLOAD_LIFETIME_SECONDS
        self.core.storage.commit(stored, part, expires_at)
        self.core.counters.add("puts")
        return Response(status_code=200)

    async def _get(self, request: Request) -> Response | FileStream:
        """Stream a stored file with its Content-Length."""
        stored, error = self._authorize(request, "GET")
        if error is not None:
            return error
        assert stored is not None
        if not stored.readable(self.core.clock.now()):
            return no_such_key()
        byte_range = parse_range(request.headers.get("range", ""), stored.size)
        if byte_range is None:
            return s3_error(
                416, "InvalidRange", "The requested range is not satisfiable"
            )
        fault = self.core.faults.draw(DOWNLOAD_FAULTS)
        if fault is not None:
            self.core.counters.add_fault(fault)
        self.core.counters.add("downloads")
        return FileStream(stored, fault, self.core.config.slow_seconds, byte_range)

    def _authorize(
        self, request: Request, method: str
    ) -> tuple[StoredObject | None, Response | None]:
        object_id = request.path_params["object_id"]
        name = request.path_params["name"]
        now = self.core.clock.now()
        check = self.core.signer.check(
            method,
            request.scope["path"],
            dict(request.query_params),
            now,
            request.headers.get("content-type"),
        )
        if not check.valid:
            return None, s3_error(403, check.code, check.message)
        stored = self.core.storage.get(object_id)
        if stored is None or stored.name != name:
            return None, no_such_key()
        if stored.expires_at < now:
            self.core.storage.delete(object_id)
            return None, s3_error(403, "AccessDenied", "Request has expired")
        return stored, None


def _too_large(limit: int) -> Response:
    return s3_error(
        400,
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size "
        f"({describe_bytes(limit)}).",
    )


async def _write_stream(request: Request, part: Path, limit: int) -> int:
    size = 0
    with part.open("wb") as file:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                break
            file.write(chunk)
    return size


@dataclass(frozen=True)
class ByteRange:
    """Part of a file to send.

    Attributes:
        start: Offset of the first byte.
        length: Number of bytes.
        partial: True for a 206 answer to a Range header.
    """

    start: int
    length: int
    partial: bool


def parse_range(header: str, size: int) -> ByteRange | None:
    """Return the byte range a `Range` header requests, as S3 reads it.

    Args:
        header: The header value; empty for a whole-file request.
        size: File size in bytes.

    Returns:
        The range to send: the whole file for no header, a malformed header or
        several ranges (S3 ignores those), or None when a single range starts
        past the end of the file.
    """
    whole = ByteRange(0, size, partial=False)
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return whole
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash or not (first_text + last_text).isdigit():
        return whole
    if not first_text:
        suffix = int(last_text)
        if suffix == 0:
            return None
        return ByteRange(max(size - suffix, 0), min(suffix, size), partial=True)
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if first >= size or last < first:
        return None
    return ByteRange(first, min(last, size - 1) - first + 1, partial=True)


class FileStream:
    """ASGI response that streams a file, or breaks off as an injected fault requests.

    Args:
        stored: The file.
        fault: `reset`, `slow`, `truncate` or None.
        slow_seconds: Delay of the `slow` fault.
        byte_range: Part of the file to send.
    """

    def __init__(
        self,
        stored: StoredObject,
        fault: str | None,
        slow_seconds: float,
        byte_range: ByteRange,
    ) -> None:
        self.path = stored.path
        self.size = stored.size
        self.fault = fault
        self.slow_seconds = slow_seconds
        self.range = byte_range
        guessed = mimetypes.guess_type(stored.name)[0]
        self.media_type = guessed or "application/octet-stream"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = scope.get(TRANSPORT_KEY)
        if self.fault == "reset":
            await reset_connection(scope)
            return
        if self.fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        await send(self._start_message())
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        length = self.range.length
        limit = length // 2 if self.fault == "truncate" else length
        await self._send_body(send, transport, limit)
        if self.fault == "truncate":
            await reset_connection(scope)
            return
        await send({"type": "http.response.body", "body": b""})

    def _start_message(self) -> Message:
        headers = [
            (b"content-length", str(self.range.length).encode()),
            (b"content-type", self.media_type.encode()),
            (b"accept-ranges", b"bytes"),
        ]
        if self.range.partial:
            end = self.range.start + self.range.length - 1
            content_range = f"bytes {self.range.start}-{end}/{self.size}"
            headers.append((b"content-range", content_range.encode()))
        status = 206 if self.range.partial else 200
        return {"type": "http.response.start", "status": status, "headers": headers}

    async def _send_body(self, send: Send, transport: object, limit: int) -> None:
        sent = 0
        with self.path.open("rb") as file:
            file.seek(self.range.start)
            while sent < limit:
                if transport is not None and transport.is_closing():  # type: ignore[attr-defined]
                    return
                size = min(READ_CHUNK_BYTES, limit - sent)
                chunk = await anyio.to_thread.run_sync(file.read, size)
                if not chunk:
                    return
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": True}
                )
                sent += len(chunk)
