"""Per-connection hooks: recording a request's status and dropping a connection."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, MutableMapping
from typing import Any, Protocol

TRANSPORT_KEY = "pdfco.transport"
RECORD_KEY = "pdfco.record"
ERROR_KEY = "pdfco.error"


class Transport(Protocol):
    """The parts of an asyncio transport the sandbox uses."""

    def abort(self) -> None: ...

    def is_closing(self) -> bool: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


def transport_of(send: Any) -> Transport | None:
    """Return the connection transport behind an ASGI `send` callable.

    Uvicorn passes the bound `send` method of its request-response cycle, and
    the cycle keeps the asyncio transport of the connection. ASGI itself offers
    no way to drop a connection, so this is the hook for the `reset` and
    `truncate` faults.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        return None
    return transport  # type: ignore[no-any-return]


def record_status(scope: MutableMapping[str, Any], status: str) -> None:
    """Count the request of `scope` with `status` now, before the client sees it.

    Recording before the response leaves the server means a test that reads
    the counters right after its request always finds that request counted.
    """
    record: Callable[[str], None] | None = scope.get(RECORD_KEY)
    if record is not None:
        record(status)


async def reset_connection(scope: MutableMapping[str, Any]) -> None:
    """Record the request as `reset` and abort its connection with a TCP reset.

    Raises:
        RuntimeError: If the server does not expose its transport.
    """
    record_status(scope, "reset")
    transport: Transport | None = scope.get(TRANSPORT_KEY)
    if transport is None:
        raise RuntimeError(
            "cannot reset the connection: the ASGI server does not "
            "expose its transport (run the sandbox on uvicorn h11)"
        )
    sock = transport.get_extra_info("socket")
    if sock is not None:
        linger = struct.pack("ii", 1, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    transport.abort()
    # Let the server see the lost connection, so it sends no 500 of its own.
    for _ in range(3):
        await asyncio.sleep(0)
