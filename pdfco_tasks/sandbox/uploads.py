"""Upload endpoints: presigned URLs, multipart and base64 bodies, and source URLs."""

from __future__ import annotations

import base64
import binascii
import shutil
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from pdfco_tasks.sandbox.clock import elapsed_ms, isoformat
from pdfco_tasks.sandbox.core import SandboxCore
from pdfco_tasks.sandbox.credits import (
    BASE64_UPLOAD_COST,
    FILE_UPLOAD_COST,
    PRESIGNED_URL_COST,
    URL_UPLOAD_COST,
)
from pdfco_tasks.sandbox.errors import ApiError
from pdfco_tasks.sandbox.merge import remove_tree
from pdfco_tasks.sandbox.params import FilePart, get_text
from pdfco_tasks.sandbox.sources import Source, parse_source
from pdfco_tasks.sandbox.storage import new_object_id, sanitize_name

PRESIGNED_PUT_LIFETIME = 900
UPLOAD_LIFETIME = 3600

Params = dict[str, Any]
Body = dict[str, Any]


class UploadHandlers:
    """The `/v1/file/upload...` endpoints; see `ApiHandlers` for the signature.

    Args:
        core: The sandbox state.
    """

    def __init__(self, core: SandboxCore) -> None:
        self.core = core

    async def presigned_url(
        self, request: Request, key: str, params: Params, started: float
    ) -> Body:
        """Issue a PUT URL and a GET URL for a new upload (7 credits)."""
        name = sanitize_name(get_text(params, "name"))
        content_type = get_text(params, "contenttype").strip() or None
        remaining = self.core.ledger.charge(key, PRESIGNED_URL_COST)
        now = self.core.clock.now()
        object_id = new_object_id()
        self.core.storage.reserve(object_id, name, "upload", key, now + UPLOAD_LIFETIME)
        self.core.counters.add("presigned_urls")
        put_url = self.core.file_url(
            object_id, name, "PUT", PRESIGNED_PUT_LIFETIME, now, content_type
        )
        return {
            "presignedUrl": put_url,
            **self._upload_body(object_id, name, now, PRESIGNED_URL_COST, remaining),
            "duration": elapsed_ms(started),
        }

    async def upload_file(
        self, request: Request, key: str, params: Params, started: float
    ) -> Body:
        """Store the multipart field `file` (11 credits).

        Files larger than the 4 MB request limit need a presigned URL.
        """
        part = params.get("file")
        if not isinstance(part, FilePart):
            raise ApiError(
                400,
                "Parameter 'file' is required: send the file as a "
                "multipart form field named 'file'",
            )
        name = sanitize_name(get_text(params, "name") or part.filename)
        return self._store_bytes(key, name, part.data, FILE_UPLOAD_COST, started)

    async def upload_base64(
        self, request: Request, key: str, params: Params, started: float
    ) -> Body:
        """Store the base64 content of `file`, with or without a data URI prefix
        (21 credits)."""
        text = get_text(params, "file").strip()
        if not text:
            raise ApiError(
                400, "Parameter 'file' is required: send the file content as base64"
            )
        if text.startswith("data:") and "," in text:
            text = text.split(",", 1)[1]
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "Parameter 'file' is not valid base64") from None
        name = sanitize_name(get_text(params, "name"))
        return self._store_bytes(key, name, data, BASE64_UPLOAD_COST, started)

    async def upload_url(
        self, request: Request, key: str, params: Params, started: float
    ) -> Body:
        """Copy the file at `url` into sandbox storage (11 credits)."""
        source = parse_source(get_text(params, "url").strip(), self.core.port)
        user = get_text(params, "httpusername")
        auth = (user, get_text(params, "httppassword")) if user else None
        name = sanitize_name(get_text(params, "name") or source.label)
        self.core.ledger.require(key, URL_UPLOAD_COST)
        object_id = new_object_id()
        now = self.core.clock.now()
        stored = self.core.storage.reserve(
            object_id, name, "upload", key, now + UPLOAD_LIFETIME
        )
        try:
            await run_in_threadpool(self._copy_source, source, stored.path, auth)
        except BaseException:
            self.core.storage.delete(object_id)
            raise
        self.core.storage.commit(stored, stored.path, now + UPLOAD_LIFETIME)
        remaining = self.core.ledger.charge(key, URL_UPLOAD_COST)
        body = self._upload_body(object_id, name, now, URL_UPLOAD_COST, remaining)
        return {**body, "duration": elapsed_ms(started)}

    def _copy_source(
        self, source: Source, target: Path, auth: tuple[str, str] | None
    ) -> None:
        work_dir = self.core.storage.make_work_dir()
        try:
            fetcher = self.core.fetcher
            fetched = fetcher.fetch(source, work_dir, fetcher.limit, auth)
            shutil.copyfile(fetched, target)
        finally:
            remove_tree(work_dir)

    def _store_bytes(
        self, key: str, name: str, data: bytes, cost: int, started: float
    ) -> Body:
        self.core.ledger.require(key, cost)
        now = self.core.clock.now()
        object_id = new_object_id()
        stored = self.core.storage.reserve(
            object_id, name, "upload", key, now + UPLOAD_LIFETIME
        )
        part = self.core.storage.temp_path(stored)
        part.write_bytes(data)
        self.core.storage.commit(stored, part, now + UPLOAD_LIFETIME)
        remaining = self.core.ledger.charge(key, cost)
        body = self._upload_body(object_id, name, now, cost, remaining)
        return {**body, "duration": elapsed_ms(started)}

    def _upload_body(
        self, object_id: str, name: str, now: float, cost: int, remaining: int
    ) -> Body:
        return {
            "url": self.core.file_url(object_id, name, "GET", UPLOAD_LIFETIME, now),
            "outputLinkValidTill": isoformat(now + UPLOAD_LIFETIME),
            "error": False,
            "status": 200,
            "name": name,
            "credits": cost,
            "remainingCredits": remaining,
        }
