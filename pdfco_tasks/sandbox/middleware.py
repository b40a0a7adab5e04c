"""Outermost ASGI layer: request faults, counting and one log line per request."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pdfco_tasks.sandbox.core import SandboxCore
from pdfco_tasks.sandbox.errors import RATE_LIMIT_MESSAGE
from pdfco_tasks.sandbox.faults import MERGE_FAULTS, REQUEST_FAULTS
from pdfco_tasks.sandbox.transport import (
    ERROR_KEY,
    RECORD_KEY,
    TRANSPORT_KEY,
    reset_connection,
    transport_of,
)

logger = logging.getLogger("pdfco_tasks.sandbox")

MERGE_PATHS = frozenset({"/v1/pdf/merge", "/v1/pdf/merge2"})
FAULT_MESSAGES = {
    "429": RATE_LIMIT_MESSAGE,
    "500": "Something went wrong. Please try again or contact support.",
    "503": "Service temporarily unavailable. Please try again later.",
    "error200": "Something went wrong. Please try again or contact support.",
    "408": "Timeout error: the request took too long. Use async=true and "
    "/v1/job/check for large jobs.",
    "445": "Timeout error: processing took too long. Use async=true and "
    "/v1/job/check for large jobs.",
}
KNOWN_API_PATHS = frozenset(
    {
        "/v1/file/upload/get-presigned-url",
        "/v1/pdf/merge",
        "/v1/pdf/merge2",
        "/v1/job/check",
        "/v1/account/credit/balance",
        "/v1/pdf/info",
        "/v1/file/delete",
        "/v1/file/upload",
        "/v1/file/upload/base64",
        "/v1/file/upload/url",
    }
)


def endpoint_label(method: str, path: str) -> str:
    """Return the counter label of a request, e.g. `POST /v1/pdf/merge2`."""
    if path.startswith("/v1/"):
        return f"{method} {path if path in KNOWN_API_PATHS else '/v1/other'}"
    if path.startswith("/__sandbox/"):
        return f"{method} {path}"
    return f"{method} file"


class SandboxMiddleware:
    """Injects request faults and records every request.

    It must be the outermost ASGI app, so that `send` is uvicorn's own and the
    connection can be reset.

    Args:
        app: The Starlette application.
        core: The sandbox state.
    """

    def __init__(self, app: ASGIApp, core: SandboxCore) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[TRANSPORT_KEY] = transport_of(send)
        started = time.monotonic()
        status: list[str] = []

        def record(value: str) -> None:
            if not status:
                status.append(value)
                self._count(scope, value)

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                record(str(message["status"]))
            await send(message)

        scope[RECORD_KEY] = record
        self.core.purge_if_due()
        try:
            if not await self._inject_fault(scope, capture):
                await self.app(scope, receive, capture)
        finally:
            record("-")
            elapsed = (time.monotonic() - started) * 1000
            error = f": {scope[ERROR_KEY]}" if ERROR_KEY in scope else ""
            logger.info(
                "%s %s -> %s in %.1f ms%s",
                scope["method"],
                scope["path"],
                status[0],
                elapsed,
                error,
            )

    async def _inject_fault(self, scope: Scope, send: Send) -> bool:
        path = scope["path"]
        if not path.startswith("/v1/"):
            return False
        kinds = REQUEST_FAULTS + (MERGE_FAULTS if path in MERGE_PATHS else ())
        fault = self.core.faults.draw(kinds)
        if fault is None:
            return False
        self.core.counters.add_fault(fault)
        logger.info("injecting fault %s into %s %s", fault, scope["method"], path)
        if fault == "slow":
            await asyncio.sleep(self.core.config.slow_seconds)
            return False
        if fault == "reset":
            await reset_connection(scope)
            return True
        await self._send_fault(fault, send)
        return True

    async def _send_fault(self, fault: str, send: Send) -> None:
        code = 500 if fault == "error200" else int(fault)
        body = {"error": True, "status": code, "message": FAULT_MESSAGES[fault]}
        http_status = (
            200 if fault == "error200" or self.core.config.errors_as_200 else code
        )
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send(
            {"type": "http.response.start", "status": http_status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": payload})

    def _count(self, scope: Scope, status: str) -> None:
        path = scope["path"]
        if path.startswith("/__sandbox/"):
            return
        label = endpoint_label(scope["method"], path)
        self.core.counters.record_request(label, status, api=path.startswith("/v1/"))
