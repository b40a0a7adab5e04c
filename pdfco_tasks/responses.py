"""Reading PDF.co's responses: errors mapped to exceptions, and secrets redacted.

PDF.co reports an error either with an HTTP error status or with HTTP 200 and
a body of `{"error": true, "status": <code>, "message": ...}`.
`raise_for_response` turns both into the hierarchy of `pdfco_tasks.exceptions`
in one place. Signed URLs carry their credentials in the query string, so every
URL that reaches a message or a log record goes through `redact_url` first.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions

from pdfco_tasks.exceptions import (
    ApiError,
    AuthenticationError,
    InputRejectedError,
    InsufficientCreditsError,
    RateLimitedError,
    ServerError,
    ServerTimeoutError,
    TransportError,
)

__all__ = ["raise_for_response", "redact_text", "redact_url"]

logger = logging.getLogger("pdfco_tasks")

MESSAGE_EXCERPT = 200
URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>]+")


def redact_url(url: str) -> str:
    """Return `url` without its query string, fragment and user information.

    Signed URLs carry their credentials in the query string, so only the result
    of this function may appear in logs and messages.
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact_text(text: str) -> str:
    """Apply `redact_url` to every http(s) URL that appears in `text`."""
    return URL_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    url = match.group(0)
    stripped = url.rstrip(".,;:)]}")
    return redact_url(stripped) + url[len(stripped) :]


class _SignedQueryFilter(logging.Filter):
    """Remove the query string of signed URLs from urllib3's log records.

    At DEBUG level urllib3 logs every request line with its full path and
    query, which for a presigned upload or result URL is the credential.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_signed(arg) for arg in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = redact_signed(record.msg)
        return True


_SIGNED_QUERY = re.compile(r"(?i)\?[^\s\"']*?\b(x-amz-|x-goog-|signature=|sig=)")
_URL_WITH_QUERY = re.compile(r"(?:https?://|/)[^\s\"'<>?]*\?[^\s\"'<>]*")


def redact_signed(value: object) -> object:
    if not isinstance(value, str) or not _SIGNED_QUERY.search(value):
        return value
    return _URL_WITH_QUERY.sub(lambda match: redact_url(match.group(0)), value)


def install_log_redaction() -> None:
    """Attach `_SignedQueryFilter` once to each urllib3 logger that logs URLs."""
    for name in ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry"):
        target = logging.getLogger(name)
        if not any(isinstance(item, _SignedQueryFilter) for item in target.filters):
            target.addFilter(_SignedQueryFilter())


install_log_redaction()


def raise_for_response(
    response: requests.Response,
    endpoint: str,
    *,
    job_id: str | None = None,
    sources: Mapping[str, str] | None = None,
    expect_json: bool = True,
) -> dict[str, Any]:
    """Raise the matching `ApiError` for an error response, or return the JSON body.

    PDF.co reports errors with an HTTP error status, or with HTTP 200 and a body
    of `{"error": true, "status": <code>, "message": ...}`; both are checked. A
    `/job/check` response whose `status` is a job state, such as `"failed"`,
    is not an API error and is returned.

    Codes map to exceptions as follows: 401 `AuthenticationError`; 402, and 403
    whose message mentions credits, `InsufficientCreditsError`; 429
    `RateLimitedError` with `retry_after` from a `Retry-After` header; 405, 408
    and 445 `ServerTimeoutError`; 5xx `ServerError`; other 4xx and 44x codes
    `InputRejectedError`, naming the input when the message names one.

    Args:
        response: The response to check.
        endpoint: Method and path for messages, such as `POST /v1/pdf/merge2`.
        job_id: The job concerned, if any.
        sources: Input URLs mapped to the names to show for them; used to find
            which input an error message is about.
        expect_json: Whether a successful response must be a JSON object.

    Returns:
        The JSON object of a successful response, or `{}` when `expect_json`
        is false and the body is not one.

    Raises:
        ApiError: The subclass that matches the code.
    """
    body, excerpt = parse_body(response)
    http_status = response.status_code
    code: int | None = http_status if http_status >= 300 else None
    in_body = False

    if code is None and body is not None and is_true(body.get("error")):
        if isinstance(body.get("status"), str) and not is_number(body["status"]):
            return body
        code = as_int(body.get("status")) or as_int(body.get("errorCode")) or 500
        in_body = True

    if code is None:
        if body is not None:
            return body
        if not expect_json:
            return {}
        message = (
            f"PDF.co responded to {endpoint} with HTTP {http_status} and a body "
            f"that is not a JSON object: {excerpt}"
        )
        raise ApiError(message, status_code=http_status, endpoint=endpoint)

    api_message = format_api_message(body, excerpt, http_status)
    raise build_api_error(
        code,
        api_message,
        endpoint=endpoint,
        job_id=job_id,
        in_body=in_body,
        sources=sources or {},
        retry_after=retry_after_seconds(response),
    )


def build_api_error(
    code: int,
    api_message: str,
    *,
    endpoint: str,
    job_id: str | None,
    in_body: bool,
    sources: Mapping[str, str],
    retry_after: float | None,
) -> ApiError:
    where = f"HTTP {code}" if not in_body else f"status {code} in an HTTP 200 response"
    where += f" from {endpoint}"
    if job_id is not None:
        where += f", job {job_id}"
    context: dict[str, Any] = {
        "status_code": code,
        "endpoint": endpoint,
        "job_id": job_id,
    }

    if code == 401:
        return AuthenticationError(
            f"PDF.co rejected the API key ({where}): {api_message} Check "
            "PDFCO_API_KEY or the api_key setting.",
            **context,
        )
    if code == 402 or (code == 403 and "credit" in api_message.lower()):
        return InsufficientCreditsError(
            f"The PDF.co account has too few credits ({where}): {api_message} "
            "Top up the account or use another API key.",
            **context,
        )
    if code == 429:
        wait = f" PDF.co asked to wait {retry_after:.0f} s." if retry_after else ""
        return RateLimitedError(
            f"PDF.co rate limit reached ({where}): {api_message}{wait}",
            retry_after=retry_after,
            **context,
        )
    if code in (405, 408, 445):
        return ServerTimeoutError(
            f"PDF.co timed out ({where}): {api_message}", **context
        )
    if code >= 500:
        return ServerError(f"PDF.co failed ({where}): {api_message}", **context)
    if 400 <= code < 500:
        source = _named_source(api_message, sources)
        subject = f"input {source}" if source is not None else "the request"
        return InputRejectedError(
            f"PDF.co rejected {subject} ({where}): {api_message}",
            source=source,
            **context,
        )
    return ApiError(
        f"PDF.co returned an unexpected status ({where}): {api_message}",
        **context,
    )


def _named_source(message: str, sources: Mapping[str, str]) -> str | None:
    """Return the label of the input that an error message names, if any."""
    for url, label in sources.items():
        path = urlsplit(url).path
        file_name = path.rsplit("/", 1)[-1]
        candidates = (url, redact_url(url), path, file_name, label)
        if any(len(item) >= 3 and item in message for item in candidates):
            return label
    return None


def format_api_message(
    body: Mapping[str, Any] | None, excerpt: str, status: int
) -> str:
    if body is not None and body.get("message"):
        text = redact_text(str(body["message"])).strip()
    elif body is not None:
        text = f"no message in the JSON body {excerpt}"
    else:
        text = f"HTTP {status} with a body that is not JSON: {excerpt}"
    if not text.endswith((".", "!", "?")):
        text += "."
    return text


def parse_body(response: requests.Response) -> tuple[dict[str, Any] | None, str]:
    """Return the body as a JSON object if it is one, and a short excerpt of it."""
    try:
        text = response.text
    except (requests.RequestException, urllib3.exceptions.HTTPError):
        return None, "(unreadable body)"
    excerpt = redact_text(" ".join(text.split()))
    if len(excerpt) > MESSAGE_EXCERPT:
        excerpt = excerpt[:MESSAGE_EXCERPT] + "..."
    excerpt = repr(excerpt) if excerpt else "(empty body)"
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        return None, excerpt
    return (data if isinstance(data, dict) else None), excerpt


def transport_error(
    exc: BaseException, method: str, url: str, timeout: Any
) -> TransportError:
    reason = transport_reason(exc)
    detail = ""
    if reason == "read timeout" and isinstance(timeout, tuple):
        detail = f" after {timeout[1]:g} s"
    elif reason == "connect timeout" and isinstance(timeout, tuple):
        detail = f" after {timeout[0]:g} s"
    return TransportError(
        f"{method} {redact_url(url)} failed: {reason}{detail}.",
        reason=reason,
        endpoint=f"{method} {redact_url(url)}",
    )


def transport_reason(exc: BaseException) -> str:
    """Classify a requests or urllib3 failure in a few words."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.ReadTimeout):
        return "read timeout"

    chain = list(exception_chain(exc))
    if any(isinstance(item, urllib3.exceptions.ReadTimeoutError) for item in chain):
        return "read timeout"
    if any(isinstance(item, ConnectionRefusedError) for item in chain):
        return "connection refused"
    if any(isinstance(item, urllib3.exceptions.NewConnectionError) for item in chain):
        return "connection failed"
    if any(isinstance(item, urllib3.exceptions.IncompleteRead) for item in chain):
        return "response cut short"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "response cut short"
    if any(isinstance(item, _RESET_ERRORS) for item in chain):
        return "connection reset"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    return "connection error"


_RESET_ERRORS = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    urllib3.exceptions.ProtocolError,
)


def exception_chain(exc: BaseException) -> list[BaseException]:
    """Return `exc` and the exceptions it wraps, through causes, args and reasons."""
    found: list[BaseException] = []
    pending = [exc]
    while pending and len(found) < 32:
        item = pending.pop()
        if any(item is seen for seen in found):
            continue
        found.append(item)
        linked = [item.__cause__, item.__context__, getattr(item, "reason", None)]
        linked.extend(item.args)
        pending.extend(entry for entry in linked if isinstance(entry, BaseException))
    return found


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if is_number(value):
        return max(float(value), 0.0)
    try:
        moment = datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT")
    except ValueError:
        return None
    return max(moment.replace(tzinfo=timezone.utc).timestamp() - time.time(), 0.0)


def parse_timestamp(value: Any) -> float | None:
    """Parse an ISO-8601 time such as `2025-08-11T17:09:13.263623+00:00`."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        logger.debug("ignored outputLinkValidTill %r: not ISO-8601", value)
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def require_str(body: Mapping[str, Any], key: str, what: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(
            f"PDF.co returned no {key} from {what}. The response has the keys "
            f"{sorted(body)}.",
            endpoint=what,
        )
    return value


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def is_true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True
