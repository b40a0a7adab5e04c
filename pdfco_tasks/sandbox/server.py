"""`Sandbox`: the PDF.co stand-in served by uvicorn, in-process or from the CLI."""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import uvicorn

from pdfco_tasks.sandbox.app import create_app
from pdfco_tasks.sandbox.clock import Clock
from pdfco_tasks.sandbox.core import SandboxConfig, SandboxCore

logger = logging.getLogger("pdfco_tasks.sandbox")

STARTUP_TIMEOUT_SECONDS = 15.0
SHUTDOWN_TIMEOUT_SECONDS = 15.0


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def bind_socket(host: str, port: int) -> socket.socket:
    """Open a listening TCP socket; port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # asyncio turns on TCP_NODELAY only for sockets whose proto is IPPROTO_TCP;
    # without it, keep-alive clients wait on delayed ACKs for 40 ms per request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class Sandbox:
    """A running PDF.co stand-in on a local port.

    Use it as a context manager: the server starts on enter (in a background
    thread) and stops on exit, removing its temporary data directory.

    Args:
        api_keys: Accepted API keys; the first is `api_key`.
        credits: Starting credit balance of every key.
        faults: Fault specification `KIND:RATE,...`.
        faults_seed: Seed of the fault generator.
        job_latency: Seconds an async job reports `working` at least.
        rate_limit: Requests per second per key, or None for no limit.
        rate_burst: Token-bucket size.
        data_dir: Storage directory; a temporary one (removed on close) if None.
        errors_as_200: Send error bodies with HTTP status 200.
        sync_budget: Seconds a sync merge may take before it returns 408.
        slow_seconds: Delay of the `slow` fault.
        workers: Merge jobs that run at once.
        clock_offset: Seconds the sandbox clock starts ahead of the wall clock.
        soffice_timeout: Seconds before a LibreOffice conversion is killed.
        max_input_bytes: Bytes one upload, or all inputs of one merge
            together, may take.
        host: Address to bind.
        port: Port to bind; 0 picks a free one.

    Example:
        >>> with Sandbox(api_keys=("KEY",)) as sandbox:
        ...     sandbox.base_url
        'http://127.0.0.1:...'
    """

    def __init__(
        self,
        api_keys: tuple[str, ...] | list[str] = ("test-key",),
        credits: int = 1_000_000,
        faults: str = "",
        faults_seed: int = 0,
        job_latency: float = 0.0,
        rate_limit: float | None = None,
        rate_burst: int | None = None,
        data_dir: str | Path | None = None,
        errors_as_200: bool = False,
        sync_budget: float = 30.0,
        slow_seconds: float = 2.0,
        workers: int = 4,
        clock_offset: float = 0.0,
        soffice_timeout: float = 120.0,
        max_input_bytes: int = 2 * 1024**3,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.config = SandboxConfig(
            api_keys=tuple(api_keys),
            credits=credits,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
            job_latency=job_latency,
            clock_offset=clock_offset,
            sync_budget=sync_budget,
            faults=faults,
            faults_seed=faults_seed,
            slow_seconds=slow_seconds,
            errors_as_200=errors_as_200,
            workers=workers,
            soffice_timeout=soffice_timeout,
            max_input_bytes=max_input_bytes,
        )
        self._socket = bind_socket(host, port)
        self._remove_data_dir: weakref.finalize[[Path], Sandbox] | None = None
        if data_dir is None:
            root = Path(tempfile.mkdtemp(prefix="pdfco-sandbox-"))
            # Removes the directory at close(), or at exit if close() is missed.
            self._remove_data_dir = weakref.finalize(self, _remove_tree, root)
        else:
            root = Path(data_dir)
            root.mkdir(parents=True, exist_ok=True)
        self.data_dir = root
        self.core = SandboxCore(self.config, root)
        bound_host, bound_port = self._socket.getsockname()[:2]
        self.core.bind(bound_host, bound_port)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def base_url(self) -> str:
        """API base URL, e.g. `http://127.0.0.1:PORT/v1`."""
        return f"{self.core.origin}/v1"

    @property
    def origin(self) -> str:
        """Scheme, host and port of the server."""
        return self.core.origin

    @property
    def port(self) -> int:
        """The bound port."""
        return self.core.port

    @property
    def api_key(self) -> str:
        """The first accepted API key."""
        return self.config.api_keys[0]

    @property
    def api_keys(self) -> tuple[str, ...]:
        """Every accepted API key."""
        return self.config.api_keys

    @property
    def clock(self) -> Clock:
        """The sandbox clock; `clock.advance(seconds)` moves every expiry."""
        return self.core.clock

    def counters(self) -> dict[str, Any]:
        """Return the counters as served by `GET /__sandbox/counters`."""
        return self.core.counters.snapshot()

    def reset_counters(self) -> None:
        """Set every counter back to zero."""
        self.core.counters.reset()

    def max_requests_in_window(self, seconds: float = 1.0) -> int:
        """Return the most API requests received within any `seconds` window."""
        return self.core.counters.max_requests_in_window(seconds)

    def set_faults(self, faults: str, seed: int | None = None) -> None:
        """Replace the fault specification, reseeding when `seed` is given.

        Raises:
            ValueError: If `faults` is invalid.
        """
        self.core.faults.configure(faults, seed)

    def balance(self, api_key: str | None = None) -> int:
        """Return the remaining credits of a key (the first key by default)."""
        return self.core.ledger.balance(api_key or self.api_key)

    def start(self) -> Sandbox:
        """Serve in a background thread and wait until the server accepts requests.

        Raises:
            RuntimeError: If the server does not start within 15 seconds.
        """
        if self._thread is not None:
            return self
        self._server = uvicorn.Server(self._uvicorn_config())
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="pdfco-sandbox",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the PDF.co sandbox server did not start")
            time.sleep(0.01)
        return self

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve in the main thread until SIGINT or SIGTERM, then clean up.

        Args:
            on_ready: Called once the signal handlers are in place, so a signal
                sent right after it still shuts the server down cleanly.
        """
        self._server = uvicorn.Server(self._uvicorn_config())
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {number: signal.signal(number, self._stop) for number in signals}
        try:
            if on_ready is not None:
                on_ready()
            self._server.run(sockets=[self._socket])
        finally:
            self.close()
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _stop(self, number: int, frame: FrameType | None) -> None:
        # Uvicorn installs its own handlers while it runs, and it raises the
        # signal again after its shutdown. This handler takes the signals outside
        # that window, so the data directory is removed after either signal.
        logger.info("received signal %d, shutting down", number)
        if self._server is not None:
            self._server.should_exit = True

    def close(self) -> None:
        """Stop the server and the workers; remove a temporary data directory."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT_SECONDS)
        self._socket.close()
        self.core.close()
        if self._remove_data_dir is not None:
            self._remove_data_dir()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _uvicorn_config(self) -> uvicorn.Config:
        return uvicorn.Config(
            create_app(self.core),
            http="h11",
            lifespan="off",
            access_log=False,
            log_level="warning",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
