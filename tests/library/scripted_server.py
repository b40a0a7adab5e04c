"""A loopback HTTP server that responds from a script and records every request.

The sandbox behaves like PDF.co. This server sends whatever a test scripts,
such as a status code that the sandbox never sends or a `Retry-After` header,
and records the headers of each request, so a test can prove which requests
carried the API key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted response.

    Attributes:
        status: HTTP status.
        body: A dict or list is sent as JSON; str and bytes as they are.
        headers: Extra response headers.
    """

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/html; charset=utf-8"
        return bytes(self.body), "application/octet-stream"


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


ReplyFactory = Callable[[Recorded], Reply]


class ScriptedServer:
    """Serves scripted replies per `(method, path)` on 127.0.0.1.

    Replies of one route are used in order; the last one repeats. A route may
    also be a function of the recorded request.
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[tuple[str, str], list[Reply] | ReplyFactory] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def route(self, method: str, path: str, *replies: Reply) -> None:
        """Respond to `method path` with `replies` in order, repeating the last."""
        with self._lock:
            self._routes[(method, path)] = list(replies)

    def route_with(self, method: str, path: str, factory: ReplyFactory) -> None:
        """Respond to `method path` with what `factory` returns for the request."""
        with self._lock:
            self._routes[(method, path)] = factory

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if (r.method, r.path) == (method, path)]

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _reply_for(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            route = self._routes.get((recorded.method, recorded.path))
            if route is None:
                return Reply(404, {"error": True, "status": 404, "message": "no route"})
            if callable(route):
                factory = route
            else:
                return route.pop(0) if len(route) > 1 else route[0]
        return factory(recorded)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def do_PUT(self) -> None:
                self._serve()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = server._reply_for(recorded)
                payload, content_type = reply.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    """Run a `ScriptedServer` for the duration of the block."""
    server = ScriptedServer().start()
    try:
        yield server
    finally:
        server.close()
