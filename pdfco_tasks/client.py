"""A synchronous client for the parts of the PDF.co Web API that a merge needs.

`PdfcoClient` uploads files through presigned URLs, submits async merge jobs,
polls them, downloads and verifies results, and reads the credit balance. Every
HTTP call has a connect and a read timeout and goes through the retry policy of
`pdfco_tasks.retry`. `pdfco_tasks.responses` maps every error response to the
exception hierarchy of `pdfco_tasks.exceptions`.

The API key is sent only to PDF.co API endpoints, and API calls never follow
redirects, so the key cannot reach another host. Presigned upload URLs, file
URLs and result URLs get no key. Logs and error messages show URLs without
their query strings, because signed URLs carry credentials there.

Example:
    >>> settings = PdfcoSettings.from_env()
    >>> with PdfcoClient(settings) as client:
    ...     uploads = [client.upload_file(Path(p)) for p in ("a.pdf", "b.pdf")]
    ...     job = client.submit_merge([u.url for u in uploads], name="merged.pdf")
    ...     status = client.wait_for_job(job)
    ...     client.download(status.url or job.result_url, Path("merged.pdf"))
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar, cast
from urllib.parse import unquote, urlsplit

import requests

from pdfco_tasks import __version__
from pdfco_tasks._files import give_default_mode
from pdfco_tasks.exceptions import (
    ApiError,
    BudgetExceededError,
    DownloadError,
    InputRejectedError,
    JobFailedError,
    JobTimeoutError,
    PdfcoError,
    PreflightError,
    ResultExpiredError,
    SubmissionUnconfirmedError,
    TransportError,
)
from pdfco_tasks.jobstore import UPLOAD_LIFETIME, JobStore, key_fingerprint
from pdfco_tasks.models import JobState, JobStatus, MergeJob, UploadedFile
from pdfco_tasks.responses import (
    as_int,
    parse_body,
    parse_timestamp,
    raise_for_response,
    redact_text,
    redact_url,
    require_str,
    transport_error,
    transport_reason,
)
from pdfco_tasks.retry import (
    call_with_retries,
    describe_failure,
    is_safe_to_resubmit,
    is_transient,
)
from pdfco_tasks.settings import PdfcoSettings

__all__ = [
    "ClientStats",
    "PdfcoClient",
    "raise_for_response",
    "redact_text",
    "redact_url",
]

T = TypeVar("T")

logger = logging.getLogger("pdfco_tasks")

CHUNK_SIZE = 1024 * 1024
"""Bytes read from a download stream at a time."""

_EOF_WINDOW = 2048
_JOB_STATES: frozenset[str] = frozenset(
    {"working", "success", "failed", "aborted", "unknown"}
)
_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass(frozen=True)
class ClientStats:
    """Counters of one client's HTTP traffic and credit use.

    Attributes:
        requests: HTTP requests sent, retries included.
        retries: Retries by cause, such as `{"HTTP 429": 2, "read timeout": 1}`.
        credits_used: Sum of the `credits` that PDF.co reported.
        remaining_credits: The last `remainingCredits` that PDF.co reported.
        job_checks: Responses received from `/job/check`.
    """

    requests: int = 0
    retries: Mapping[str, int] = field(default_factory=dict)
    credits_used: int = 0
    remaining_credits: int | None = None
    job_checks: int = 0

    @property
    def total_retries(self) -> int:
        """Number of retries of all causes."""
        return sum(self.retries.values())


class PdfcoClient:
    """A client for PDF.co's upload, merge, job check and download endpoints.

    Safe to share between threads. Counters are kept per client in `stats`.

    Args:
        settings: API key, base URL, timeouts and policies.
        session: The `requests.Session` to use; the client creates and closes
            its own when omitted.
        sleep: Waits the given seconds; used by retries and polling.
        clock: Current time in epoch seconds; used for deadlines and expiry.
        job_store: Where uploads and submitted jobs are remembered for reuse.
        before_request: Called before every HTTP request, for example to wait
            for a shared rate limit.
    """

    def __init__(
        self,
        settings: PdfcoSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        job_store: JobStore | None = None,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._store = job_store
        self._before_request = before_request
        self._account = key_fingerprint(settings.api_key)
        self._api_prefix = urlsplit(settings.base_url).path.rstrip("/")
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._request_count = 0
        self._retries: Counter[str] = Counter()
        self._credits_used = 0
        self._remaining_credits: int | None = None
        self._job_checks = 0
        self._job_expiry: dict[str, float] = {}

    def close(self) -> None:
        """Close the HTTP session if the client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> PdfcoClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def settings(self) -> PdfcoSettings:
        """The settings the client was created with."""
        return self._settings

    @property
    def stats(self) -> ClientStats:
        """A snapshot of the request, retry and credit counters."""
        with self._lock:
            return ClientStats(
                requests=self._request_count,
                retries=dict(self._retries),
                credits_used=self._credits_used,
                remaining_credits=self._remaining_credits,
                job_checks=self._job_checks,
            )

    def upload_file(
        self,
        path: Path,
        *,
        content_type: str = "application/octet-stream",
        sha256: str | None = None,
    ) -> UploadedFile:
        """Upload a local file through a presigned URL, or reuse an earlier upload.

        The file is streamed from disk. With a job store, an upload of the same
        content to the same account is reused while PDF.co still serves it,
        which a one-byte GET of the stored file URL checks first.

        Args:
            path: The file to upload.
            content_type: MIME type sent when requesting the URL and with the PUT.
            sha256: Hex digest of the content, if already known.

        Returns:
            The upload; `credits` is 0 when an earlier upload was reused.

        Raises:
            PreflightError: When `path` is not a file or is empty.
            ApiError: When PDF.co or the file storage rejects the upload.
            TransportError: When the connection fails on every attempt.
        """
        path = Path(path)
        _check_uploadable(path)
        digest = sha256 or _sha256_of(path)
        now = self._clock()

        reused = self._find_upload(digest, now)
        if reused is not None and _url_file_name(reused.url) != path.name:
            # PDF.co names bookmarks after the uploaded file, so an upload of
            # the same bytes under another name would mislabel this input.
            reused = None
        if reused is not None and self._upload_exists(reused.url):
            logger.info("reused upload of %s from %s", path, _iso(reused.uploaded_at))
            return replace(reused, source=str(path), credits=0)
        if reused is not None and self._store is not None:
            logger.info(
                "upload of %s from %s is gone from PDF.co; uploading it again",
                path,
                _iso(reused.uploaded_at),
            )
            self._store.forget_upload(reused.url)

        presigned = self._api_call(
            "GET",
            "/file/upload/get-presigned-url",
            params={"name": path.name, "contenttype": content_type},
            sources={},
        )
        put_url = require_str(presigned, "presignedUrl", "get-presigned-url")
        file_url = require_str(presigned, "url", "get-presigned-url")
        self._put_file(put_url, path, content_type)

        upload = UploadedFile(
            source=str(path),
            url=file_url,
            sha256=digest,
            uploaded_at=now,
            expires_at=now + UPLOAD_LIFETIME,
            credits=as_int(presigned.get("credits")) or 0,
        )
        if self._store is not None:
            self._store.save_upload(
                self._settings.base_url, upload, account=self._account
            )
        return upload

    def submit_merge(
        self,
        urls: Sequence[str],
        *,
        name: str,
        expiration_minutes: int | None = None,
        bookmarks: bool = True,
        endpoint: Literal["merge2", "merge"] = "merge2",
        labels: Sequence[str] | None = None,
        store_key: str | None = None,
    ) -> MergeJob:
        """Submit an async merge job.

        The request is sent again only when its failure proves that PDF.co did
        not queue it (see `pdfco_tasks.retry.is_safe_to_resubmit`). With a job
        store and `store_key`, the job is saved the moment PDF.co accepts it.

        Args:
            urls: Input URLs in merge order.
            name: File name of the result.
            expiration_minutes: Lifetime of the result link; the settings'
                `expiration_minutes` when omitted.
            bookmarks: Ask PDF.co for one bookmark per input.
            endpoint: `merge2` converts non-PDF inputs; `merge` takes PDFs only.
            labels: Names of the inputs for error messages, such as the local
                paths, in the order of `urls`.
            store_key: Key under which the job is saved in the job store.

        Returns:
            The accepted job.

        Raises:
            InputRejectedError: When a URL contains a comma or PDF.co rejects an
                input.
            BudgetExceededError: When the balance is below
                `settings.min_remaining_credits`.
            SubmissionUnconfirmedError: When the request was sent but no response
                arrived; PDF.co may have created the job.
        """
        minutes = (
            self._settings.expiration_minutes
            if expiration_minutes is None
            else expiration_minutes
        )
        sources = _merge_sources(urls, labels, name, minutes)
        self.check_budget()

        payload = {
            "url": ",".join(urls),
            "name": name,
            "async": True,
            "expiration": minutes,
            "profiles": json.dumps({"GenerateBookmarks": bookmarks}),
        }
        submitted_at = self._clock()
        body = self._submit(f"/pdf/{endpoint}", payload, sources)

        job = self._merge_job(body, name, submitted_at, minutes)
        with self._lock:
            self._job_expiry[job.job_id] = job.expires_at
        if self._store is not None and store_key is not None:
            self._store.save_job(store_key, job)
        return job

    def submit_or_resume(
        self,
        urls: Sequence[str],
        *,
        name: str,
        store_key: str,
        expiration_minutes: int | None = None,
        bookmarks: bool = True,
        endpoint: Literal["merge2", "merge"] = "merge2",
        labels: Sequence[str] | None = None,
    ) -> MergeJob:
        """Return the live stored job of `store_key`, or submit a new one.

        Args:
            urls: Input URLs in merge order.
            name: File name of the result.
            store_key: A `pdfco_tasks.jobstore.merge_key` of these inputs and
                options.
            expiration_minutes: Lifetime of the result link.
            bookmarks: Ask PDF.co for one bookmark per input.
            endpoint: `merge2` or `merge`.
            labels: Names of the inputs for error messages.

        Returns:
            The stored job with `resumed=True`, or the newly submitted job.

        Raises:
            PdfcoError: As `submit_merge`.
        """
        if self._store is not None:
            stored = self._store.find_job(store_key, self._clock())
            if stored is not None:
                logger.info(
                    "resumed merge job %s submitted at %s",
                    stored.job_id,
                    _iso(stored.submitted_at),
                )
                with self._lock:
                    self._job_expiry[stored.job_id] = stored.expires_at
                return replace(stored, resumed=True)
        return self.submit_merge(
            urls,
            name=name,
            expiration_minutes=expiration_minutes,
            bookmarks=bookmarks,
            endpoint=endpoint,
            labels=labels,
            store_key=store_key,
        )

    def check_job(self, job_id: str, *, force: bool = False) -> JobStatus:
        """Ask PDF.co for the state of a job once.

        Every check costs credits. PDF.co returns `working` for a job id it does
        not know, unless `force` is set, in which case it returns `unknown`.

        Args:
            job_id: The job to check.
            force: Ask PDF.co to look the job up for certain.

        Returns:
            The parsed response. A state that this client does not recognise
            becomes `failed`, with the state named in `message`.
        """
        params = {"jobid": job_id}
        if force:
            params["force"] = "true"
        body = self._api_call("GET", "/job/check", params=params, job_id=job_id)
        with self._lock:
            self._job_checks += 1
        return _job_status(job_id, body)

    def wait_for_job(
        self,
        job: MergeJob,
        *,
        on_poll: Callable[[JobStatus, float], None] | None = None,
    ) -> JobStatus:
        """Poll a job until it succeeds, fails or the polling deadline passes.

        Intervals start at `polling.first_interval` and grow by
        `polling.backoff` up to `polling.max_interval`, each shortened by up to
        10 % at random so parallel waits spread out. Once the job has been
        working for `polling.force_check_after` seconds, or at the deadline if
        that comes first, one check is sent with `force=true`, so a job id that
        PDF.co does not know fails as unknown instead of timing out. Transient
        errors of a check are retried by the retry policy and do not end the
        wait.

        Args:
            job: The job to wait for.
            on_poll: Called after every check with the status and the seconds
                waited so far.

        Returns:
            The `success` status. Its `url` falls back to `job.result_url` and
            its `polling_credits` is the sum charged by all checks.

        Raises:
            JobFailedError: When the job ends `failed`, `aborted` or `unknown`.
            JobTimeoutError: When the deadline passes first.
        """
        policy = self._settings.polling
        started = self._clock()
        deadline_at = (started if job.resumed else job.submitted_at) + policy.deadline
        max_checks = _max_checks(policy.deadline, policy.first_interval)
        interval = policy.first_interval
        forced = False
        checks = 0
        spent = 0
        last_error: PdfcoError | None = None

        while True:
            remaining = deadline_at - self._clock()
            if checks and (remaining <= 0 or checks >= max_checks):
                raise self._timeout_error(job, started, checks, last_error)
            self._sleep(
                max(0.0, min(interval * self._rng.uniform(0.9, 1.0), remaining))
            )

            now = self._clock()
            # The last check before the deadline is forced too, because a
            # deadline shorter than force_check_after would otherwise report
            # an unknown job id as a timeout.
            force = not forced and (
                now - job.submitted_at >= policy.force_check_after
                or now >= deadline_at
                or checks + 1 >= max_checks
            )
            checks += 1
            try:
                status = self.check_job(job.job_id, force=force)
            except PdfcoError as exc:
                if not exc.transient:
                    raise
                last_error = exc
                logger.warning("check of job %s failed: %s", job.job_id, exc)
                continue

            forced = forced or force
            spent += status.credits
            if on_poll is not None:
                on_poll(status, self._clock() - started)
            if status.status == "success":
                return replace(
                    status, url=status.url or job.result_url, polling_credits=spent
                )
            if status.terminal:
                self._forget_job_id(job.job_id)
                raise _job_failed_error(status)
            interval = min(interval * policy.backoff, policy.max_interval)

    def download(
        self,
        url: str,
        target: Path,
        *,
        job_id: str | None = None,
        expires_at: float | None = None,
    ) -> Path:
        """Stream a file to `target` through a verified temporary file.

        The body goes to a `.part` file beside the target. It is checked
        against `Content-Length`, must start with `%PDF-` and have `%%EOF` in
        its last 2 KiB, and is synced to disk before it replaces the target
        atomically. On any failure the temporary file is removed.

        Args:
            url: The file or result URL; no API key is sent to it.
            target: Where to write the file; parent directories are created.
            job_id: The job whose result this is, for messages and expiry.
            expires_at: When the result link expires, if known; by default the
                expiry of a job that this client submitted or resumed.

        Returns:
            `target`.

        Raises:
            ResultExpiredError: When a result link returns 403 or 404.
            DownloadError: When the body is cut short or is not a whole PDF on
                every attempt.
            ApiError: When the storage returns another error status.
        """
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if expires_at is None and job_id is not None:
            with self._lock:
                expires_at = self._job_expiry.get(job_id)

        endpoint = f"GET {redact_url(url)}"
        self._with_retries(
            lambda: self._download_once(url, target, endpoint, job_id, expires_at),
            describe=endpoint,
        )
        return target

    def get_balance(self) -> int:
        """Return the account's remaining credits.

        Raises:
            ApiError: When the response has no `remainingCredits`.
        """
        body = self._api_call("GET", "/account/credit/balance")
        balance = as_int(body.get("remainingCredits"))
        if balance is None:
            raise ApiError(
                "PDF.co returned no remainingCredits from GET "
                f"{self._api_prefix}/account/credit/balance.",
                endpoint=f"GET {self._api_prefix}/account/credit/balance",
            )
        return balance

    def get_pdf_info(self, url: str) -> dict[str, Any]:
        """Return the `info` object of `/pdf/info` for the PDF at `url`.

        Its `PageCount` is the number of pages.

        Raises:
            ApiError: When PDF.co cannot read the file or the response has no
                `info` object.
        """
        body = self._api_call(
            "POST", "/pdf/info", payload={"url": url}, sources={url: redact_url(url)}
        )
        info = body.get("info")
        if not isinstance(info, dict):
            raise ApiError(
                f"PDF.co returned no info object from POST {self._api_prefix}"
                f"/pdf/info for {redact_url(url)}.",
                endpoint=f"POST {self._api_prefix}/pdf/info",
            )
        return info

    def delete_file(self, url: str) -> None:
        """Delete a temporary file or result from PDF.co before it expires."""
        self._api_call(
            "POST", "/file/delete", payload={"url": url}, sources={url: redact_url(url)}
        )
        if self._store is not None:
            self._store.forget_upload(url)

    def _api_call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
        job_id: str | None = None,
        sources: Mapping[str, str] | None = None,
        retry_if: Callable[[BaseException], bool] = is_transient,
    ) -> dict[str, Any]:
        url = f"{self._settings.base_url}{path}"
        endpoint = f"{method} {self._api_prefix}{path}"
        headers = {"x-api-key": self._settings.api_key, "User-Agent": _USER_AGENT}
        timeout = (self._settings.connect_timeout, self._settings.read_timeout)

        def attempt() -> dict[str, Any]:
            response = self._send(
                method,
                url,
                params=params,
                json=payload,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            )
            with contextlib.closing(response):
                self._record_credits(response)
                return raise_for_response(
                    response, endpoint, job_id=job_id, sources=sources
                )

        return self._with_retries(attempt, describe=endpoint, retry_if=retry_if)

    def _submit(
        self, path: str, payload: Mapping[str, Any], sources: Mapping[str, str]
    ) -> dict[str, Any]:
        try:
            return self._api_call(
                "POST",
                path,
                payload=payload,
                sources=sources,
                retry_if=is_safe_to_resubmit,
            )
        except TransportError as exc:
            if is_safe_to_resubmit(exc):
                raise
            reason = exc.context.get("reason", "transport error")
            raise SubmissionUnconfirmedError(
                f"The merge request to {self._api_prefix}{path} was sent but no "
                f"response arrived ({reason}). PDF.co may have created the job. "
                "The request was not sent again, because a second request starts "
                "a second job that is charged again. Submit again only if a "
                "duplicate merge is acceptable.",
                **exc.context,
            ) from exc

    def _with_retries(
        self,
        fn: Callable[[], T],
        *,
        describe: str,
        retry_if: Callable[[BaseException], bool] = is_transient,
    ) -> T:
        return call_with_retries(
            fn,
            policy=self._settings.retry,
            sleep=self._sleep,
            describe=describe,
            on_retry=self._count_retry,
            retry_if=retry_if,
            rng=self._rng,
        )

    def _send(
        self, method: str, url: str, *, log: bool = True, **kwargs: Any
    ) -> requests.Response:
        """Send one request, log it, and turn transport failures into errors."""
        if self._before_request is not None:
            self._before_request()
        with self._lock:
            self._request_count += 1

        started = time.monotonic()
        try:
            response = self._session.request(method, url, **kwargs)
        except _TRANSPORT_ERRORS as exc:
            error = transport_error(exc, method, url, kwargs.get("timeout"))
            if url.startswith(self._settings.base_url):
                raise error from exc
            # The requests error repeats a file URL with its query string, which
            # is the signature, so it is not chained to what callers may log.
            raise error from None
        if log:
            _log_call(method, url, response.status_code, started)
        return response

    def _upload_exists(self, url: str) -> bool:
        """Tell whether the file storage still serves an upload, reading one byte.

        The job store expects PDF.co to keep an upload for an hour on the local
        clock. A skewed clock or an explicit delete removes it sooner, and a
        merge of a deleted input fails on PDF.co after it was paid for.
        """
        endpoint = f"GET {redact_url(url)}"
        timeout = (self._settings.connect_timeout, self._settings.read_timeout)
        headers = {"Range": "bytes=0-0", "User-Agent": _USER_AGENT}

        def attempt() -> bool:
            response = self._send(
                "GET", url, headers=headers, timeout=timeout, stream=True
            )
            with contextlib.closing(response):
                if response.status_code in (403, 404):
                    return False
                raise_for_response(response, endpoint, expect_json=False)
                return True

        return self._with_retries(attempt, describe=endpoint)

    def _put_file(self, url: str, path: Path, content_type: str) -> None:
        endpoint = f"PUT {redact_url(url)}"
        timeout = (self._settings.connect_timeout, self._settings.transfer_timeout)
        headers = {"Content-Type": content_type, "User-Agent": _USER_AGENT}

        def attempt() -> None:
            with path.open("rb") as stream:
                response = self._send(
                    "PUT", url, data=stream, headers=headers, timeout=timeout
                )
            with contextlib.closing(response):
                raise_for_response(
                    response, endpoint, sources={url: str(path)}, expect_json=False
                )

        self._with_retries(attempt, describe=endpoint)

    def _download_once(
        self,
        url: str,
        target: Path,
        endpoint: str,
        job_id: str | None,
        expires_at: float | None,
    ) -> None:
        timeout = (self._settings.connect_timeout, self._settings.transfer_timeout)
        started = time.monotonic()
        # Identity encoding keeps the body byte count equal to Content-Length.
        headers = {"Accept-Encoding": "identity", "User-Agent": _USER_AGENT}
        response = self._send(
            "GET", url, log=False, stream=True, headers=headers, timeout=timeout
        )
        with contextlib.closing(response):
            if response.status_code >= 300:
                _log_call("GET", url, response.status_code, started)
                if job_id is not None and response.status_code in (403, 404):
                    self._forget_job_id(job_id)
                    raise self._expired_error(job_id, expires_at, response.status_code)
                raise_for_response(response, endpoint, job_id=job_id, expect_json=False)

            size = _stream_to_target(response, target, url, job_id)
            _log_call("GET", url, response.status_code, started, size)

    def _expired_error(
        self, job_id: str, expires_at: float | None, status_code: int
    ) -> ResultExpiredError:
        context = {"job_id": job_id, "status_code": status_code}
        if expires_at is None:
            message = (
                f"The result link of job {job_id} returned HTTP {status_code}, so "
                "the result has expired or was deleted. Run the merge again."
            )
        elif self._clock() >= expires_at:
            message = (
                f"The result link of job {job_id} expired at {_iso(expires_at)}; "
                "run the merge again."
            )
        else:
            message = (
                f"The result link of job {job_id} returned HTTP {status_code} "
                f"although it is valid until {_iso(expires_at)}; PDF.co may have "
                "deleted the result. Run the merge again."
            )
        return ResultExpiredError(message, expires_at=expires_at, **context)

    def _timeout_error(
        self,
        job: MergeJob,
        started: float,
        checks: int,
        last_error: PdfcoError | None,
    ) -> JobTimeoutError:
        waited = self._clock() - started
        message = (
            f"Merge job {job.job_id} was still working after {waited:.0f} s "
            f"({checks} checks; deadline {self._settings.polling.deadline:.0f} s). "
            "Raise polling.deadline or merge fewer inputs per job."
        )
        if last_error is not None:
            message += f" The last check failed: {last_error.message}"
        return JobTimeoutError(message, job_id=job.job_id, waited=waited)

    def check_budget(self) -> None:
        """Raise BudgetExceededError when the balance is below the configured minimum.

        Does nothing when `min_remaining_credits` is not set. Reads the balance
        from PDF.co unless an earlier response of this client reported it.
        """
        minimum = self._settings.min_remaining_credits
        if minimum is None:
            return
        with self._lock:
            remaining = self._remaining_credits
        if remaining is None:
            remaining = self.get_balance()
        if remaining < minimum:
            raise BudgetExceededError(
                f"PDF.co balance is {remaining} credits, below the "
                f"min_remaining_credits of {minimum}; nothing was submitted. Top "
                "up the account or lower min_remaining_credits.",
                remaining_credits=remaining,
                minimum=minimum,
            )

    def _merge_job(
        self, body: Mapping[str, Any], name: str, submitted_at: float, minutes: int
    ) -> MergeJob:
        job_id = require_str(body, "jobId", "merge")
        result_url = require_str(body, "url", "merge")
        expires_at = parse_timestamp(body.get("outputLinkValidTill"))
        if expires_at is None:
            expires_at = submitted_at + minutes * 60.0
        return MergeJob(
            job_id=job_id,
            result_url=result_url,
            name=str(body.get("name") or name),
            submitted_at=submitted_at,
            expires_at=expires_at,
            credits=as_int(body.get("credits")) or 0,
            remaining_credits=as_int(body.get("remainingCredits")),
        )

    def _find_upload(self, digest: str, now: float) -> UploadedFile | None:
        if self._store is None:
            return None
        return self._store.find_upload(
            self._settings.base_url, digest, now, account=self._account
        )

    def _forget_job_id(self, job_id: str) -> None:
        if self._store is not None:
            self._store.forget_job_id(job_id)

    def _record_credits(self, response: requests.Response) -> None:
        body, _ = parse_body(response)
        if body is None:
            return
        credits = as_int(body.get("credits"))
        remaining = as_int(body.get("remainingCredits"))
        with self._lock:
            if credits is not None:
                self._credits_used += credits
            if remaining is not None:
                self._remaining_credits = remaining

    def _count_retry(self, exc: BaseException, attempt: int, delay: float) -> None:
        with self._lock:
            self._retries[describe_failure(exc)] += 1


_USER_AGENT = f"pdfco-tasks/{__version__}"


def _log_call(
    method: str, url: str, status: int, started: float, size: int | None = None
) -> None:
    elapsed_ms = (time.monotonic() - started) * 1000.0
    if size is None:
        logger.info("%s %s %d %.0f ms", method, redact_url(url), status, elapsed_ms)
    else:
        logger.info(
            "%s %s %d %.0f ms %d bytes",
            method,
            redact_url(url),
            status,
            elapsed_ms,
            size,
        )


def _url_file_name(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def _stream_to_target(
    response: requests.Response, target: Path, url: str, job_id: str | None
) -> int:
    """Write the body to a temporary file, verify it and move it onto `target`."""
    expected = as_int(response.headers.get("Content-Length"))
    temporary: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
        ) as handle:
            temporary = Path(handle.name)
            size, head, tail = _copy_body(response, handle, url, job_id, expected)
            _verify_pdf(size, expected, head, tail, url, job_id)
            handle.flush()
            os.fsync(handle.fileno())
        give_default_mode(temporary)
        os.replace(temporary, target)
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise
    return size


def _copy_body(
    response: requests.Response,
    handle: Any,
    url: str,
    job_id: str | None,
    expected: int | None,
) -> tuple[int, bytes, bytes]:
    size = 0
    head = b""
    tail = b""
    try:
        for chunk in response.iter_content(chunk_size=CHUNK_SIZE):
            handle.write(chunk)
            size += len(chunk)
            if len(head) < 5:
                head = (head + chunk)[:5]
            # Slice before joining: joining whole chunks copied every byte once
            # more, 0.66 s of a 2.2 s 1 GiB download (bench/p3_large_download.py).
            tail = (tail + chunk[-_EOF_WINDOW:])[-_EOF_WINDOW:]
    except _TRANSPORT_ERRORS as exc:
        total = "" if expected is None else f" of {expected}"
        raise DownloadError(
            f"The download of {redact_url(url)} stopped after {size}{total} bytes "
            f"({transport_reason(exc)}).",
            url=redact_url(url),
            job_id=job_id,
            reason="incomplete download",
        ) from exc
    return size, head, tail


def _verify_pdf(
    size: int,
    expected: int | None,
    head: bytes,
    tail: bytes,
    url: str,
    job_id: str | None,
) -> None:
    shown = redact_url(url)
    context = {"url": shown, "job_id": job_id}
    if expected is not None and size != expected:
        raise DownloadError(
            f"The download of {shown} has {size} bytes, but Content-Length "
            f"announced {expected}.",
            reason="incomplete download",
            **context,
        )
    if not head.startswith(b"%PDF-"):
        raise DownloadError(
            f"The download of {shown} is not a PDF: it starts with {head!r}.",
            reason="not a PDF",
            **context,
        )
    if b"%%EOF" not in tail:
        raise DownloadError(
            f"The download of {shown} has no %%EOF marker in its last "
            f"{_EOF_WINDOW} bytes, so the PDF is incomplete.",
            reason="incomplete download",
            **context,
        )


def _merge_sources(
    urls: Sequence[str], labels: Sequence[str] | None, name: str, minutes: int
) -> dict[str, str]:
    """Check merge arguments before anything is sent and name each input."""
    if not urls:
        raise InputRejectedError("A merge needs at least one input URL; got none.")
    if labels is not None and len(labels) != len(urls):
        raise ValueError(
            f"labels must name every URL: got {len(labels)} labels for "
            f"{len(urls)} URLs."
        )
    if not name.strip():
        raise InputRejectedError("The output name of a merge must not be empty.")
    if minutes < 1:
        raise InputRejectedError(
            f"expiration_minutes must be at least 1, not {minutes}."
        )

    shown = list(labels) if labels is not None else [redact_url(u) for u in urls]
    for url, label in zip(urls, shown, strict=True):
        if "," in url:
            raise InputRejectedError(
                f"The URL of input {label} contains a comma, which PDF.co reads "
                "as the separator between inputs. Percent-encode the comma as "
                "%2C or upload the file instead.",
                source=label,
            )
    return dict(zip(urls, shown, strict=True))


def _job_status(job_id: str, body: Mapping[str, Any]) -> JobStatus:
    raw = str(body.get("status", "")).strip().lower()
    message = body.get("message")
    message = str(message) if message is not None else None
    if raw in _JOB_STATES:
        state = cast(JobState, raw)
    else:
        state = "failed"
        message = (
            f"PDF.co returned the job status {raw!r}, which this client does "
            f"not recognise, so the job is treated as failed. Message: {message}"
        )
    url = body.get("url")
    return JobStatus(
        job_id=job_id,
        status=state,
        url=str(url) if url else None,
        page_count=as_int(body.get("pageCount")),
        credits=as_int(body.get("credits")) or 0,
        remaining_credits=as_int(body.get("remainingCredits")),
        message=redact_text(message) if message else None,
        error_code=as_int(body.get("errorCode")),
        job_duration_ms=as_int(body.get("jobDuration")),
    )


def _job_failed_error(status: JobStatus) -> JobFailedError:
    job_id = status.job_id
    if status.status == "unknown":
        message = (
            f"PDF.co does not know job {job_id}; it may have expired or never "
            "existed. Run the merge again."
        )
    else:
        code = f" (error code {status.error_code})" if status.error_code else ""
        reason = status.message or "no message"
        message = f"PDF.co merge job {job_id} ended {status.status}{code}: {reason}"
    return JobFailedError(
        message,
        job_id=job_id,
        status=status.status,
        error_code=status.error_code,
    )


def _max_checks(deadline: float, first_interval: float) -> int:
    """Bound the checks of one wait, so a clock that never advances cannot hang it.

    Every sleep lasts at least 90 % of `first_interval`, so with a real clock the
    deadline always comes first.
    """
    if first_interval <= 0:
        return 10_000
    return math.ceil(deadline / (0.9 * first_interval)) + 2


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds")


def _check_uploadable(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise PreflightError(
            f"Cannot upload {path}: {exc.strerror}.",
            problems=[(str(path), str(exc.strerror))],
        ) from exc
    if not path.is_file():
        raise PreflightError(
            f"Cannot upload {path}: it is not a regular file.",
            problems=[(str(path), "not a regular file")],
        )
    if size == 0:
        raise PreflightError(
            f"Cannot upload {path}: the file is empty.",
            problems=[(str(path), "empty file")],
        )


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(CHUNK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()
