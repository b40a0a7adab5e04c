"""The Starlette application: PDF.co API routes, file URLs and control routes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pdfco_tasks.sandbox.clock import elapsed_ms, isoformat
from pdfco_tasks.sandbox.core import SandboxCore
from pdfco_tasks.sandbox.credits import (
    JOB_CHECK_COST,
    MERGE2_COST_PER_PAGE,
    MERGE_COST_PER_PAGE,
    PDF_INFO_COST,
    InsufficientCredits,
)
from pdfco_tasks.sandbox.errors import RATE_LIMIT_MESSAGE, ApiError
from pdfco_tasks.sandbox.files import FileHandlers
from pdfco_tasks.sandbox.jobs import ABORTED, FAILED, SUCCESS, WORKING, Job
from pdfco_tasks.sandbox.merge import MergeSpec, remove_tree
from pdfco_tasks.sandbox.middleware import SandboxMiddleware
from pdfco_tasks.sandbox.params import (
    get_bool,
    get_int,
    get_profiles,
    get_text,
    read_params,
)
from pdfco_tasks.sandbox.pdfinfo import pdf_info
from pdfco_tasks.sandbox.sources import (
    Source,
    parse_source,
    parse_sources,
    too_large,
)
from pdfco_tasks.sandbox.storage import sanitize_name
from pdfco_tasks.sandbox.transport import ERROR_KEY
from pdfco_tasks.sandbox.uploads import UploadHandlers

logger = logging.getLogger("pdfco_tasks.sandbox")

DEFAULT_EXPIRATION_MINUTES = 60
# PDF.co caps `expiration` by plan, at 1440 minutes on its largest plans; the
# sandbox clamps larger values to that instead of rejecting them.
MAX_EXPIRATION_MINUTES = 1440
DEFAULT_RESULT_NAME = "result.pdf"
INTERNAL_ERROR_MESSAGE = "Something went wrong. Please try again or contact support."

Params = dict[str, Any]
Body = dict[str, Any]
Handler = Callable[[Request, str, Params, float], Awaitable[Body]]


def create_app(core: SandboxCore) -> SandboxMiddleware:
    """Build the ASGI application of one sandbox.

    Args:
        core: The sandbox state.

    Returns:
        The application, wrapped in the fault and counting middleware.
    """
    api = ApiHandlers(core)
    uploads = UploadHandlers(core)
    files = FileHandlers(core)
    control = ControlHandlers(core)
    both = ["GET", "POST"]
    routes = [
        Route(
            "/v1/file/upload/get-presigned-url",
            api.wrap(uploads.presigned_url),
            methods=both,
        ),
        Route("/v1/file/upload", api.wrap(uploads.upload_file), methods=["POST"]),
        Route(
            "/v1/file/upload/base64", api.wrap(uploads.upload_base64), methods=["POST"]
        ),
        Route("/v1/file/upload/url", api.wrap(uploads.upload_url), methods=both),
        Route("/v1/pdf/merge", api.wrap(api.merge), methods=both),
        Route("/v1/pdf/merge2", api.wrap(api.merge2), methods=both),
        Route("/v1/job/check", api.wrap(api.job_check), methods=both),
        Route("/v1/account/credit/balance", api.wrap(api.balance), methods=both),
        Route("/v1/pdf/info", api.wrap(api.info), methods=both),
        Route("/v1/file/delete", api.wrap(api.delete), methods=both),
        Route(
            "/v1/{rest:path}",
            api.not_found,
            methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
        ),
        Route("/__sandbox/counters", control.counters, methods=["GET"]),
        Route("/__sandbox/reset-counters", control.reset_counters, methods=["POST"]),
        Route("/__sandbox/clock", control.clock, methods=both),
        Route("/__sandbox/faults", control.faults, methods=both),
        Route("/{object_id}/{name}", files.put, methods=["PUT"]),
        Route("/{object_id}/{name}", files.get, methods=["GET"]),
    ]
    return SandboxMiddleware(Starlette(routes=routes), core)


class ApiHandlers:
    """The `/v1` endpoints.

    Every handler receives the request, the authenticated API key, the merged
    parameters and the start time, and returns the success body. Errors are
    raised as `ApiError` and sent as the documented error body.

    Args:
        core: The sandbox state.
    """

    def __init__(self, core: SandboxCore) -> None:
        self.core = core

    def wrap(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Add authentication, rate limiting and error bodies to a handler."""

        async def endpoint(request: Request) -> Response:
            started = time.monotonic()
            try:
                key = self._authenticate(request)
                if not self.core.limiter.allow(key):
                    raise ApiError(429, RATE_LIMIT_MESSAGE)
                params = await read_params(request)
                body = await handler(request, key, params, started)
            except ApiError as exc:
                request.scope[ERROR_KEY] = exc.message
                return self.error(exc)
            except Exception:
                logger.exception(
                    "internal error in %s %s", request.method, request.scope["path"]
                )
                return self.error(ApiError(500, INTERNAL_ERROR_MESSAGE))
            return JSONResponse(body)

        return endpoint

    def error(self, exc: ApiError) -> Response:
        """Return the error body, as HTTP 200 when errors_as_200 is on."""
        status = 200 if self.core.config.errors_as_200 else exc.status
        return JSONResponse(exc.body(), status_code=status)

    async def not_found(self, request: Request) -> Response:
        """Return 404 for an unknown `/v1` path."""
        path = request.scope["path"]
        return self.error(ApiError(404, f"Endpoint {path} not found"))

    async def merge(
        self, request: Request, key: str, params: Params, started: float
    ) -> Body:
        """Merge PDF inputs (1 credit per output page)."""
        return await self._merge("merge", key, params, started)

    async def merge2(
        self, request: Request, key: str, params: Params, started: float
    ) -> Body:
        """Merge inputs of any supported type (2 credits per output page)."""
        return await self._merge("merge2", key, params, started)

    async def _merge(
        self, endpoint: str, key: str, params: Params, started: float
    ) -> Body:
        job = self._new_job(endpoint, key, params)
        self.core.counters.add_merge(key)
        if job.is_async:
            return self._submit_async(job, started)
        return await self._run_sync(job, started)

    def _new_job(self, endpoint: str, key: str, params: Params) -> Job:
        sources = parse_sources(get_text(params, "url"), self.core.port)
        name = sanitize_name(get_text(params, "name"), DEFAULT_RESULT_NAME)
        is_async = get_bool(params, "async")
        expiration = get_int(
            params, "expiration", DEFAULT_EXPIRATION_MINUTES, 1, MAX_EXPIRATION_MINUTES
        )
        # TODO: profiles other than GenerateBookmarks (zipIncludeFilter,
        # RenameMatchingFieldsDuringMerge) and the `callback` URL are ignored.
        bookmarks = _profile_flag(get_profiles(params), "GenerateBookmarks")
        user = get_text(params, "httpusername")
        auth = (user, get_text(params, "httppassword")) if user else None
        self._check_known_sizes(sources)
        price = MERGE_COST_PER_PAGE if endpoint == "merge" else MERGE2_COST_PER_PAGE
        self.core.ledger.require(key, price)
        fault = self._draw_job_fault() if is_async else None
        drop_page = self._draw_fault("drop-page") is not None
        now = self.core.clock.now()
        job_id = self.core.jobs.new_job_id(expiration)
        lifetime = expiration * 60
        ready_at = now + (self.core.config.job_latency if is_async else 0.0)
        result = self.core.storage.reserve(
            job_id, name, "result", key, now + lifetime, available_at=ready_at
        )
        return Job(
            job_id=job_id,
            owner=key,
            spec=MergeSpec(endpoint, sources, bookmarks, auth, drop_page),
            result=result,
            url=self.core.file_url(job_id, name, "GET", lifetime, now),
            price_per_page=price,
            is_async=is_async,
            ready_at=ready_at,
            fault=fault,
        )

    def _check_known_sizes(self, sources: list[Source]) -> None:
        total = sum(self.core.fetcher.own_size(source) for source in sources)
        if total > self.core.fetcher.limit:
            raise too_large(self.core.fetcher.limit)

    def _draw_job_fault(self) -> str | None:
        return self._draw_fault("job-failed", "job-aborted", "job-unknown")

    def _draw_fault(self, *kinds: str) -> str | None:
        fault = self.core.faults.draw(kinds)
        if fault is not None:
            self.core.counters.add_fault(fault)
            logger.info("injecting fault %s into a merge job", fault)
        return fault

    def _submit_async(self, job: Job, started: float) -> Body:
        remaining = self.core.ledger.charge(job.owner, job.price_per_page)
        job.first_page_charge = job.price_per_page
        if job.fault == "job-unknown":
            self.core.storage.delete(job.job_id)
            self.core.counters.add_job("unknown")
        else:
            self.core.jobs.start(job)
        return self._merge_body(job, 0, job.price_per_page, remaining, started)

    async def _run_sync(self, job: Job, started: float) -> Body:
        future = asyncio.wrap_future(self.core.jobs.start(job))
        budget = self.core.config.sync_budget
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout=budget)
        except asyncio.TimeoutError:
            self.core.jobs.abandon(job)
            raise ApiError(
                408,
                f"Timeout error: the merge took longer than "
                f"{budget:g} s. Use async=true and /v1/job/check "
                "for large jobs.",
            ) from None
        if job.state != SUCCESS:
            raise ApiError(job.error_code or 500, job.message)
        cost = job.page_count * job.price_per_page
        try:
            remaining = self.core.ledger.charge(job.owner, cost)
        except InsufficientCredits:
            self.core.storage.delete(job.job_id)
            raise
        return self._merge_body(job, job.page_count, cost, remaining, started)

    def _merge_body(
        self, job: Job, pages: int, credits: int, remaining: int, started: float
    ) -> Body:
        return {
            "url": job.url,
            "jobId": job.job_id,
            "pageCount": pages,
            "error": False,
            "status": 200,
            "name": job.result.name,
            "credits": credits,
            "remainingCredits": remaining,
            "duration": elapsed_ms(started),
            "outputLinkValidTill": isoformat(job.result.expires_at),
        }

    async def job_check(
        self, request: Request, key: str, params: Params, started: float
    ) -> Body:
        """Report the state of a job (2 credits per call)."""
        job_id = get_text(params, "jobid").strip()
        if not job_id:
            raise ApiError(400, "Parameter 'jobid' is required")
        force = get_bool(params, "force")
        remaining = self.core.ledger.charge(key, JOB_CHECK_COST)
        job = self.core.jobs.get(job_id, key)
        body: Body = {
            "jobId": job_id,
            "credits": JOB_CHECK_COST,
            "remainingCredits": remaining,
        }
        if job is None:
            body.update(status="unknown" if force else WORKING, error=False)
        else:
            body.update(self._job_state(job, key))
        body["credits"] += body.pop("extraCredits", 0)
        body["remainingCredits"] = self.core.ledger.balance(key)
        body["duration"] = elapsed_ms(started)
        return body

    def _job_state(self, job: Job, key: str) -> Body:
        state = self.core.jobs.visible_state(job)
        if state == WORKING:
            return {"status": WORKING, "error": False}
        if state == SUCCESS:
            return self._success_state(job, key)
        if state == ABORTED:
            return {"status": ABORTED, "error": True, "message": job.message}
        return {
            "status": FAILED,
            "error": True,
            "errorCode": job.error_code,
            "message": job.message,
        }

    def _success_state(self, job: Job, key: str) -> Body:
        extra = 0
        if self.core.jobs.settle_once(job):
            pages_left = max(job.page_count - 1, 0)
            cost = pages_left * job.price_per_page
            extra = self.core.ledger.charge_at_most(key, cost)
        return {
            "status": SUCCESS,
            "message": "Success",
            "error": False,
            "url": job.url,
            "pageCount": job.page_count,
            "jobDuration": job.job_duration_ms,
            "outputLinkValidTill": isoformat(job.result.expires_at),
            "extraCredits": extra,
        }

    async def balance(
        self, request: Request, key: str, params: Params, started: float
    ) -> Body:
        """Return the remaining credits of the key."""
        return {
            "remainingCredits": self.core.ledger.balance(key),
            "error": False,
            "status": 200,
            "duration": elapsed_ms(started),
        }

    async def info(
        self, request: Request, key: str, params: Params, started: float
    ) -> Body:
        """Return facts about one PDF, `info.PageCount` among them (1 credit)."""
        source = parse_source(get_text(params, "url").strip(), self.core.port)
        password = get_text(params, "password")
        user = get_text(params, "httpusername")
        auth = (user, get_text(params, "httppassword")) if user else None
        self.core.ledger.require(key, PDF_INFO_COST)
        work_dir = self.core.storage.make_work_dir()
        try:
            info = await run_in_threadpool(
                self._read_info, source, work_dir, password, auth
            )
        finally:
            remove_tree(work_dir)
        remaining = self.core.ledger.charge(key, PDF_INFO_COST)
        return {
            "info": info,
            "error": False,
            "status": 200,
            "name": source.label,
            "credits": PDF_INFO_COST,
            "remainingCredits": remaining,
            "duration": elapsed_ms(started),
        }

    def _read_info(
        self,
        source: Source,
        work_dir: Any,
        password: str,
        auth: tuple[str, str] | None,
    ) -> dict[str, Any]:
        fetcher = self.core.fetcher
        path = fetcher.fetch(source, work_dir, fetcher.limit, auth)
        return pdf_info(path, source.label, password)

    async def delete(
        self, request: Request, key: str, params: Params, started: float
    ) -> Body:
        """Delete an uploaded file or a result before it expires."""
        source = parse_source(get_text(params, "url").strip(), self.core.port)
        object_id = source.own_object_id
        if object_id is None or not self.core.storage.delete(object_id):
            raise ApiError(404, f"File {source.label} not found")
        return {
            "error": False,
            "status": 200,
            "credits": 0,
            "remainingCredits": self.core.ledger.balance(key),
            "duration": elapsed_ms(started),
        }

    def _authenticate(self, request: Request) -> str:
        key = request.headers.get("x-api-key") or request.query_params.get(
            "x-api-key", ""
        )
        if not key or not self.core.ledger.knows(key):
            raise ApiError(
                401,
                "Unauthorized: the x-api-key header is missing or "
                "holds an unknown API key",
            )
        return key


class ControlHandlers:
    """`/__sandbox/...` routes that tests use to read and steer the sandbox.

    Args:
        core: The sandbox state.
    """

    def __init__(self, core: SandboxCore) -> None:
        self.core = core

    async def counters(self, request: Request) -> Response:
        """Return every counter and the request log.

        Each `window` query parameter (seconds) adds its maximum request count
        to `max_requests_in_window`, beside the default 1-second window.
        """
        snapshot = self.core.counters.snapshot()
        try:
            windows = [float(value) for value in request.query_params.getlist("window")]
        except ValueError:
            return JSONResponse(
                {"error": True, "message": "window must be seconds"}, 400
            )
        for window in windows:
            count = self.core.counters.max_requests_in_window(window)
            snapshot["max_requests_in_window"][str(window)] = count
        return JSONResponse(snapshot)

    async def reset_counters(self, request: Request) -> Response:
        """Set the counters back to zero."""
        self.core.counters.reset()
        return JSONResponse({"reset": True})

    async def clock(self, request: Request) -> Response:
        """Advance the clock by `{"advance": seconds}` and return the offset.

        Any other parameter, and an `advance` that is not a finite number of
        seconds >= 0, gets a 400 and leaves the clock alone.
        """
        if request.method == "POST":
            try:
                params = await read_params(request)
                self.core.clock.advance(_advance_seconds(params))
            except (ApiError, TypeError, ValueError) as exc:
                return JSONResponse({"error": True, "message": str(exc)}, 400)
        return JSONResponse(
            {"offset": self.core.clock.offset, "now": isoformat(self.core.clock.now())}
        )

    async def faults(self, request: Request) -> Response:
        """Replace the faults with `{"faults": "KIND:RATE,...", "seed": N}`."""
        if request.method == "POST":
            try:
                params = await read_params(request)
                seed = params.get("seed")
                self.core.faults.configure(
                    get_text(params, "faults"), None if seed is None else int(seed)
                )
            except (ApiError, TypeError, ValueError) as exc:
                return JSONResponse({"error": True, "message": str(exc)}, 400)
        return JSONResponse({"faults": self.core.faults.rates})


def _advance_seconds(params: Params) -> float:
    unknown = sorted(set(params) - {"advance"})
    if unknown:
        raise ValueError(
            f'unknown clock parameter {unknown[0]!r}; send {{"advance": seconds}} '
            "to move the clock forward"
        )
    value = params.get("advance", 0)
    try:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"advance must be a number of seconds, not {value!r}"
        ) from None


def _profile_flag(profiles: dict[str, Any], name: str) -> bool:
    for key, value in profiles.items():
        if key.lower() == name.lower():
            return value is True or str(value).strip().lower() in ("true", "1")
    return False
