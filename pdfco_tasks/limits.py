"""Prefect global concurrency and rate limits around PDF.co calls.

Two server-side limits are honoured when they exist, and skipped when they do
not, so a missing limit never breaks a run:

- `pdfco-api`, a rate limit taken before every HTTP call. It spans processes
  and machines. Create it with a slot decay equal to the allowed rate:
  `prefect gcl create pdfco-api --limit 2 --slot-decay-per-second 2`.
- `pdfco-merge`, a concurrency limit held for the whole of each merge of
  `merge_batches`: `prefect gcl create pdfco-merge --limit 4`.

Prefect logs a warning each time a missing limit is requested. A merge makes
dozens of calls, so existence is checked once a minute per process and the
limit is requested only when it exists.

Within one process, `requests_per_second` of the settings adds a local limiter
(`pdfco_tasks.ratelimit`) that all threads share. It needs no server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency, rate_limit
from prefect.exceptions import MissingContextError, ObjectNotFound
from prefect.logging import get_run_logger
from prefect.settings import get_current_settings

from pdfco_tasks.ratelimit import limiter_for_settings
from pdfco_tasks.settings import PdfcoSettings

__all__ = [
    "MERGE_CONCURRENCY_NAME",
    "RATE_LIMIT_NAME",
    "global_limit_exists",
    "merge_slot",
    "request_hook",
    "take_rate_limit_slot",
]

RATE_LIMIT_NAME = "pdfco-api"
MERGE_CONCURRENCY_NAME = "pdfco-merge"

_RECHECK_SECONDS = 60.0

_checked: dict[tuple[str, str, bool], tuple[float, bool]] = {}
_checked_lock = threading.Lock()


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("pdfco_tasks")


def global_limit_exists(name: str, *, rate: bool = False) -> bool:
    """Tell whether the Prefect server has an active global limit `name`.

    The result is cached per API URL for a minute. Errors reading the limit
    count as absent, because the limits are optional.

    Args:
        name: The global concurrency limit's name.
        rate: Require a slot decay, which `rate_limit` needs.

    Returns:
        Whether the limit exists, is active and, with `rate`, decays.
    """
    api_url = str(get_current_settings().api.url or "")
    key = (api_url, name, rate)
    now = time.monotonic()
    with _checked_lock:
        cached = _checked.get(key)
    if cached is not None and now - cached[0] < _RECHECK_SECONDS:
        return cached[1]

    usable = _read_limit(name, rate)
    with _checked_lock:
        _checked[key] = (now, usable)
    return usable


def _read_limit(name: str, rate: bool) -> bool:
    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return False
    except Exception as exc:  # the limits are optional, so no error fails a call
        _logger().warning(
            "Could not read the global limit %s, so it is not applied: %s: %s",
            name,
            type(exc).__name__,
            exc,
        )
        return False

    if rate and not limit.slot_decay_per_second > 0:
        _logger().warning(
            "The global limit %s has no slot decay, so it cannot serve as a rate "
            "limit and is not applied; recreate it with --slot-decay-per-second.",
            name,
        )
        return False
    return limit.active


def take_rate_limit_slot() -> None:
    """Wait for a slot of the `pdfco-api` rate limit, when the server has one."""
    if global_limit_exists(RATE_LIMIT_NAME, rate=True):
        rate_limit(RATE_LIMIT_NAME, strict=False)


def request_hook(settings: PdfcoSettings) -> Callable[[], None]:
    """Build the `before_request` hook of a client used inside Prefect runs.

    The hook first waits for the server-wide `pdfco-api` rate limit, then for
    the process-wide limiter of `settings.requests_per_second`. The local
    limiter goes last because it spaces calls precisely only when nothing
    waits between it and the request.

    Args:
        settings: The client's settings; its base URL and key select the
            shared local limiter.

    Returns:
        A callable taking no arguments.
    """
    limiter = limiter_for_settings(settings)

    def before_request() -> None:
        take_rate_limit_slot()
        if limiter is not None:
            limiter.acquire()

    return before_request


@contextmanager
def merge_slot() -> Iterator[None]:
    """Hold a slot of the `pdfco-merge` concurrency limit, when the server has one.

    Example:
        ```python
        with merge_slot():
            merge_documents(sources, output)
        ```
    """
    if not global_limit_exists(MERGE_CONCURRENCY_NAME):
        yield
        return

    with concurrency(MERGE_CONCURRENCY_NAME, occupy=1, strict=False):
        yield
