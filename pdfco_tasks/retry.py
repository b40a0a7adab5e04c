"""The one retry policy for HTTP calls to PDF.co and its file storage.

Transient failures are retried with exponential backoff and full jitter: the
delay before retry `n` is drawn uniformly from `[0, min(max_delay,
base_delay * 2 ** (n - 1))]`. A `Retry-After` value sent by the server replaces
the drawn delay, capped at `max_delay`.

Transient means the same call may succeed later: connection failures, read
timeouts, cut-short responses, HTTP 408, 429, 445 and 5xx. Every other error
(400, 401, 402, 415, 441, 442 and the rest of the 4xx codes) fails at once with
the API's message.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from typing import TypeVar

import requests

from pdfco_tasks.exceptions import (
    ApiError,
    PdfcoError,
    RateLimitedError,
    ServerError,
    ServerTimeoutError,
    TransportError,
)
from pdfco_tasks.settings import RetryPolicy

__all__ = [
    "backoff_delays",
    "call_with_retries",
    "compute_delay",
    "describe_failure",
    "is_safe_to_resubmit",
    "is_transient",
]

T = TypeVar("T")

logger = logging.getLogger("pdfco_tasks")

_TRANSIENT_REQUESTS_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def is_transient(exc: BaseException) -> bool:
    """Tell whether retrying the call that raised `exc` may succeed.

    Args:
        exc: An exception raised by an HTTP call.

    Returns:
        `exc.transient` for library errors; true for the connection, timeout
        and cut-short-response errors of requests; false for everything else.
    """
    if isinstance(exc, PdfcoError):
        return exc.transient
    return isinstance(exc, _TRANSIENT_REQUESTS_ERRORS)


def is_safe_to_resubmit(exc: BaseException) -> bool:
    """Tell whether a failed merge submission can be sent again.

    PDF.co has no idempotency key, so a merge request that reached the job queue
    and is sent again starts a second job, charged again. A submission is
    therefore resent only when the failure shows the request had no effect:

    - PDF.co responded with 429, 408, 445 or 5xx, codes that report a request
      it did not carry out.
    - The connection failed before the request was sent: connect timeout,
      connection refused or failed name resolution.
    - The connection was reset before any byte of a response arrived.

    A read timeout or a response cut short means that the request was sent and
    may have created a job, so those are not resent.

    NOTE: Two of these cases rest on assumptions, not on PDF.co documentation:
    that a 5xx response means no job was queued, and that a reset before any
    response byte means the request was dropped. If either is wrong, the cost
    is one duplicate job and its credits, never a wrong result.

    Args:
        exc: The exception raised by the submission attempt.

    Returns:
        Whether sending the same merge request again is safe.
    """
    if isinstance(exc, RateLimitedError | ServerTimeoutError | ServerError):
        return True
    if isinstance(exc, TransportError):
        return exc.context.get("reason") in _UNSENT_REASONS
    return False


_UNSENT_REASONS = frozenset(
    {"connect timeout", "connection refused", "connection failed", "connection reset"}
)


def compute_delay(
    attempt: int,
    policy: RetryPolicy,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Compute the delay before the retry that follows failed attempt `attempt`.

    Args:
        attempt: Number of the attempt that failed, starting at 1.
        policy: Base and maximum delay.
        retry_after: Seconds from the server's `Retry-After` header, if sent.
        rng: Source of jitter; the module's shared generator when omitted.

    Returns:
        Seconds to wait: `retry_after` capped at `policy.max_delay` when given,
        else a uniform draw from zero to the exponential cap.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_delay)

    exponent = min(max(attempt - 1, 0), 62)
    cap = min(policy.max_delay, policy.base_delay * 2.0**exponent)
    draw = (rng or random).uniform(0.0, cap)
    return draw


def backoff_delays(
    policy: RetryPolicy, rng: random.Random | None = None
) -> Iterator[float]:
    """Yield the delays before each retry the policy allows, without `Retry-After`.

    Args:
        policy: The retry policy.
        rng: Source of jitter.

    Yields:
        `policy.max_attempts - 1` delays in seconds.
    """
    for attempt in range(1, policy.max_attempts):
        yield compute_delay(attempt, policy, None, rng)


def describe_failure(exc: BaseException) -> str:
    """Name the cause of a failed attempt in a few words, for logs and counters.

    Args:
        exc: The exception of the failed attempt.

    Returns:
        `"HTTP 429"` for API errors, the transport reason such as
        `"read timeout"` for transport errors, the class name otherwise.
    """
    if isinstance(exc, ApiError) and exc.status_code is not None:
        return f"HTTP {exc.status_code}"
    if isinstance(exc, PdfcoError) and "reason" in exc.context:
        return str(exc.context["reason"])
    return type(exc).__name__


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    describe: str,
    on_retry: Callable[[BaseException, int, float], None] | None = None,
    retry_if: Callable[[BaseException], bool] = is_transient,
    rng: random.Random | None = None,
) -> T:
    """Call `fn` until it succeeds, fails for good or runs out of attempts.

    Each retry logs one WARNING with the cause and the delay.

    Args:
        fn: The call, without arguments; it must be safe to repeat.
        policy: Number of attempts and delays.
        sleep: Waits the given number of seconds.
        describe: What the call does, such as `"POST /v1/pdf/merge2"`, for logs.
        on_retry: Called with the exception, the failed attempt's number and the
            delay before each retry.
        retry_if: Decides whether an exception may be retried.
        rng: Source of jitter.

    Returns:
        What `fn` returns.

    Raises:
        Exception: The last exception of `fn`. A `PdfcoError` raised after more
            than one attempt is raised again as the same type, with the number
            of attempts added to its message and the original as its cause.
    """
    attempts = max(policy.max_attempts, 1)
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not retry_if(exc):
                raise
            if attempt == attempts:
                _raise_exhausted(exc, attempts)
            delay = compute_delay(attempt, policy, _retry_after(exc), rng)
            logger.warning(
                "%s failed (%s); retry %d of %d in %.2f s",
                describe,
                describe_failure(exc),
                attempt,
                attempts - 1,
                delay,
            )
            if on_retry is not None:
                on_retry(exc, attempt, delay)
            sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


def _retry_after(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


def _raise_exhausted(exc: Exception, attempts: int) -> None:
    if not isinstance(exc, PdfcoError) or attempts == 1:
        raise exc
    message = f"{exc.message} (gave up after {attempts} attempts)"
    raise type(exc)(message, **exc.context) from exc
