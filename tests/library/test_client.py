"""Tests of `PdfcoClient` over real HTTP against the sandbox and a scripted server."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from pdfco_tasks.client import PdfcoClient, redact_text, redact_url
from pdfco_tasks.exceptions import (
    ApiError,
    AuthenticationError,
    BudgetExceededError,
    DownloadError,
    InputRejectedError,
    InsufficientCreditsError,
    JobFailedError,
    JobTimeoutError,
    RateLimitedError,
    ResultExpiredError,
    ServerError,
    ServerTimeoutError,
    SubmissionUnconfirmedError,
    TransportError,
)
from pdfco_tasks.jobstore import JobStore, merge_key
from pdfco_tasks.models import JobStatus, MergeJob
from pdfco_tasks.sandbox import Sandbox
from pdfco_tasks.settings import PdfcoSettings, PollingPolicy, RetryPolicy
from tests.factories import make_encrypted_pdf, make_image, make_pdf
from tests.library.scripted_server import Reply, ScriptedServer, scripted_server

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
FAST_POLLING = PollingPolicy(
    first_interval=0.02, max_interval=0.1, backoff=1.5, deadline=30.0
)
SandboxFactory = Callable[..., Sandbox]


def make_settings(base_url: str, api_key: str, **changes: Any) -> PdfcoSettings:
    values: dict[str, Any] = {
        "api_key": api_key,
        "base_url": base_url,
        "connect_timeout": 5.0,
        "read_timeout": 10.0,
        "transfer_timeout": 10.0,
        "retry": FAST_RETRY,
        "polling": FAST_POLLING,
    }
    values.update(changes)
    return PdfcoSettings(**values)


class FakeTime:
    """A clock that only moves when `sleep` is called, recording every sleep."""

    def __init__(self) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def sandbox(pdfco_sandbox: Sandbox) -> Sandbox:
    return pdfco_sandbox


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[PdfcoClient]:
    with PdfcoClient(make_settings(sandbox.base_url, sandbox.api_key)) as client:
        yield client


@pytest.fixture
def pdfs(tmp_path: Path) -> list[Path]:
    directory = tmp_path / "inputs"
    directory.mkdir()
    return [make_pdf(directory, f"part{n}.pdf", n) for n in (1, 2, 3)]


def upload_all(client: PdfcoClient, paths: list[Path]) -> list[str]:
    return [client.upload_file(p, content_type="application/pdf").url for p in paths]


def requests_seen(sandbox: Sandbox, endpoint: str) -> dict[str, int]:
    counted: dict[str, int] = sandbox.counters()["requests"].get(endpoint, {})
    return counted


class TestEndToEnd:
    def test_three_pdfs_merged_downloaded_and_counted(
        self, client: PdfcoClient, sandbox: Sandbox, pdfs: list[Path], tmp_path: Path
    ) -> None:
        urls = upload_all(client, pdfs)
        job = client.submit_merge(urls, name="merged.pdf")
        status = client.wait_for_job(job)
        target = client.download(
            status.url or job.result_url, tmp_path / "out" / "merged.pdf"
        )

        assert status.status == "success"
        assert status.page_count == 6
        assert len(PdfReader(target).pages) == 6
        assert status.polling_credits >= 2
        assert sorted(p.name for p in target.parent.iterdir()) == ["merged.pdf"]
        counters = sandbox.counters()
        assert counters["merge_submissions_total"] == 1
        assert counters["puts"] == 3
        assert client.stats.remaining_credits == sandbox.balance()
        assert client.stats.job_checks >= 1
        assert client.stats.retries == {}

    def test_job_expiry_parsed_from_output_link(
        self, client: PdfcoClient, pdfs: list[Path]
    ) -> None:
        urls = upload_all(client, pdfs[:2])

        job = client.submit_merge(urls, name="short.pdf", expiration_minutes=5)

        assert job.name == "short.pdf"
        assert job.expires_at - job.submitted_at == pytest.approx(300, abs=5)
        assert job.credits > 0

    def test_balance_info_and_delete(
        self, client: PdfcoClient, sandbox: Sandbox, pdfs: list[Path]
    ) -> None:
        upload = client.upload_file(pdfs[2])

        info = client.get_pdf_info(upload.url)
        client.delete_file(upload.url)

        assert info["PageCount"] == 3
        assert client.get_balance() == sandbox.balance()
        with pytest.raises(
            InputRejectedError, match=r"HTTP 400 .*Cannot read input part3\.pdf"
        ):
            client.get_pdf_info(upload.url)


class TestSecrets:
    def test_key_sent_only_to_api_endpoints(self, tmp_path: Path) -> None:
        pdf = make_pdf(tmp_path, "a.pdf", 1)
        with scripted_server() as server:
            script_full_merge(server, pdf.read_bytes())
            settings = make_settings(server.base_url, "SECRET-KEY")
            with PdfcoClient(settings) as client:
                upload = client.upload_file(pdf, content_type="application/pdf")
                job = client.submit_merge([upload.url], name="out.pdf")
                status = client.wait_for_job(job)
                client.download(status.url or "", tmp_path / "out.pdf")

        api = [r for r in server.requests if r.path.startswith("/v1/")]
        files = [r for r in server.requests if not r.path.startswith("/v1/")]
        assert [r.headers.get("x-api-key") for r in api] == ["SECRET-KEY"] * 3
        assert [(r.method, r.path) for r in files] == [
            ("PUT", "/put/a.pdf"),
            ("GET", "/result/out.pdf"),
        ]
        assert all("x-api-key" not in r.headers for r in files)
        assert all("x-api-key" not in r.query for r in server.requests)

    def test_upload_and_merge_requests_follow_contract(self, tmp_path: Path) -> None:
        pdf = make_pdf(tmp_path, "a.pdf", 2)
        with scripted_server() as server:
            script_full_merge(server, pdf.read_bytes())
            settings = make_settings(server.base_url, "SECRET-KEY")
            with PdfcoClient(settings) as client:
                upload = client.upload_file(pdf, content_type="application/pdf")
                client.submit_merge(
                    [upload.url, upload.url], name="out.pdf", bookmarks=False
                )

        presign = server.requests_to("GET", "/v1/file/upload/get-presigned-url")[0]
        put = server.requests_to("PUT", "/put/a.pdf")[0]
        merge = server.requests_to("POST", "/v1/pdf/merge2")[0]
        assert presign.query == {"name": ["a.pdf"], "contenttype": ["application/pdf"]}
        assert put.headers["content-type"] == "application/pdf"
        assert put.body == pdf.read_bytes()
        assert json.loads(merge.body) == {
            "url": f"{upload.url},{upload.url}",
            "name": "out.pdf",
            "async": True,
            "expiration": 60,
            "profiles": '{"GenerateBookmarks": false}',
        }

    def test_logs_one_info_per_call_without_secrets(
        self,
        sandbox: Sandbox,
        pdfs: list[Path],
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        settings = make_settings(sandbox.base_url, sandbox.api_key)
        with (
            caplog.at_level(logging.INFO, logger="pdfco_tasks"),
            PdfcoClient(settings) as client,
        ):
            urls = upload_all(client, pdfs)
            job = client.submit_merge(urls, name="merged.pdf")
            status = client.wait_for_job(job)
            client.download(status.url or job.result_url, tmp_path / "m.pdf")
            requests_sent = client.stats.requests

        lines = [r.getMessage() for r in caplog.records if r.name == "pdfco_tasks"]
        calls = [line for line in lines if re.match(r"^(GET|PUT|POST) http://", line)]
        assert len(calls) == requests_sent
        assert len(calls) == len(lines)
        assert all(re.search(r" \d{3} \d+ ms", line) for line in calls)
        assert not [line for line in lines if sandbox.api_key in line]
        assert not [line for line in lines if "?" in line]
        assert urls[0].split("?")[0] in "\n".join(lines)

    def test_before_request_hook_runs_per_request(
        self, sandbox: Sandbox, pdfs: list[Path]
    ) -> None:
        calls: list[None] = []
        settings = make_settings(sandbox.base_url, sandbox.api_key)
        with PdfcoClient(settings, before_request=lambda: calls.append(None)) as client:
            client.upload_file(pdfs[0])
            client.get_balance()
            sent = client.stats.requests

        assert len(calls) == sent
        assert sent == 3

    def test_urllib3_debug_lines_omit_signatures(
        self,
        sandbox: Sandbox,
        pdfs: list[Path],
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        settings = make_settings(sandbox.base_url, sandbox.api_key)
        with (
            caplog.at_level(logging.DEBUG, logger="urllib3"),
            PdfcoClient(settings) as client,
        ):
            urls = upload_all(client, pdfs[:1])
            job = client.submit_merge(urls, name="merged.pdf")
            status = client.wait_for_job(job)
            client.download(status.url or job.result_url, tmp_path / "m.pdf")

        lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
        result_path = redact_url(job.result_url).split("/", 3)[3]
        assert [line for line in lines if '"PUT /' in line]
        assert [line for line in lines if f'"GET /{result_path} ' in line]
        assert not [line for line in lines if "X-Amz-" in line]
        assert "/v1/job/check?jobid=" in "\n".join(lines)

    def test_transport_error_hides_signed_url(self, tmp_path: Path) -> None:
        port = free_port()
        url = f"http://127.0.0.1:{port}/OBJ/m.pdf?X-Amz-Signature=topsecret"
        settings = make_settings(
            f"http://127.0.0.1:{port}/v1", "KEY", retry=RetryPolicy(max_attempts=1)
        )
        with (
            PdfcoClient(settings) as client,
            pytest.raises(TransportError) as info,
        ):
            client.download(url, tmp_path / "m.pdf")

        rendered = "".join(traceback.format_exception(info.value))
        assert f"GET http://127.0.0.1:{port}/OBJ/m.pdf failed" in rendered
        assert "connection refused" in rendered
        assert "topsecret" not in rendered
        assert "topsecret" not in repr(info.value.args)

    def test_redact_removes_query_strings(self) -> None:
        url = "https://user:pw@s3.example.com/ab/c.pdf?X-Amz-Signature=abc&t=1"

        assert redact_url(url) == "https://s3.example.com/ab/c.pdf"
        assert redact_text(f"cannot read {url}, sorry") == (
            "cannot read https://s3.example.com/ab/c.pdf, sorry"
        )
        assert redact_text(f"({url}).") == "(https://s3.example.com/ab/c.pdf)."


def script_full_merge(server: ScriptedServer, pdf: bytes) -> None:
    origin = server.origin
    server.route(
        "GET",
        "/v1/file/upload/get-presigned-url",
        Reply(
            body={
                "presignedUrl": f"{origin}/put/a.pdf?sig=put-secret",
                "url": f"{origin}/files/a.pdf?sig=get-secret",
                "error": False,
                "status": 200,
                "credits": 7,
                "remainingCredits": 93,
            }
        ),
    )
    server.route("PUT", "/put/a.pdf", Reply(200))
    result = f"{origin}/result/out.pdf?sig=result-secret"
    server.route(
        "POST",
        "/v1/pdf/merge2",
        Reply(body={"jobId": "JOB1", "url": result, "error": False, "status": 200}),
    )
    server.route(
        "GET",
        "/v1/job/check",
        Reply(body={"status": "success", "url": result, "pageCount": 1}),
    )
    server.route("GET", "/result/out.pdf", Reply(200, pdf))


class TestErrorsFromSandbox:
    def test_wrong_key_fails_once_with_401(self, sandbox: Sandbox) -> None:
        settings = make_settings(sandbox.base_url, "wrong-key")
        with (
            PdfcoClient(settings) as client,
            pytest.raises(
                AuthenticationError,
                match=r"rejected the API key \(HTTP 401 from GET "
                r"/v1/account/credit/balance\): Unauthorized.*Check PDFCO_API_KEY",
            ) as info,
        ):
            client.get_balance()

        assert info.value.status_code == 401
        assert "wrong-key" not in str(info.value)
        assert requests_seen(sandbox, "GET /v1/account/credit/balance") == {"401": 1}

    def test_low_credits_fail_once_with_402(
        self, pdfco_sandbox_factory: SandboxFactory, pdfs: list[Path]
    ) -> None:
        sandbox = pdfco_sandbox_factory(credits=5)
        settings = make_settings(sandbox.base_url, sandbox.api_key)
        with (
            PdfcoClient(settings) as client,
            pytest.raises(
                InsufficientCreditsError,
                match=r"too few credits \(HTTP 402 .*\): Not enough credits\. Top up",
            ),
        ):
            client.upload_file(pdfs[0])

        endpoint = "GET /v1/file/upload/get-presigned-url"
        assert requests_seen(sandbox, endpoint) == {"402": 1}

    def test_errors_in_http_200_bodies_are_mapped(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox = pdfco_sandbox_factory(errors_as_200=True)
        settings = make_settings(sandbox.base_url, "wrong-key")
        with (
            PdfcoClient(settings) as client,
            pytest.raises(
                AuthenticationError, match=r"status 401 in an HTTP 200 response"
            ),
        ):
            client.get_balance()

    def test_bad_url_rejected_with_400_naming_input(
        self, client: PdfcoClient, sandbox: Sandbox
    ) -> None:
        with pytest.raises(
            InputRejectedError,
            match=r"rejected input docs/report\.pdf \(HTTP 400 from POST "
            r"/v1/pdf/merge2\): Invalid input URL for report\.pdf",
        ) as info:
            client.submit_merge(
                ["ftp://127.0.0.1/report.pdf"],
                name="out.pdf",
                labels=["docs/report.pdf"],
            )

        assert info.value.source == "docs/report.pdf"
        assert requests_seen(sandbox, "POST /v1/pdf/merge2") == {"400": 1}

    def test_password_pdf_rejected_with_441(
        self, client: PdfcoClient, tmp_path: Path
    ) -> None:
        locked = make_encrypted_pdf(
            tmp_path, "locked.pdf", 2, user_password="pw", owner_password="owner"
        )
        upload = client.upload_file(locked, content_type="application/pdf")

        with pytest.raises(InputRejectedError, match=r"HTTP 441 .*locked\.pdf") as info:
            client.get_pdf_info(upload.url)

        assert info.value.status_code == 441
        assert info.value.source == redact_url(upload.url)

    def test_password_pdf_fails_merge_job_with_441(
        self, client: PdfcoClient, tmp_path: Path
    ) -> None:
        locked = make_encrypted_pdf(
            tmp_path, "locked.pdf", 1, user_password="pw", owner_password="owner"
        )
        job = client.submit_merge(upload_all(client, [locked]), name="out.pdf")

        with pytest.raises(
            JobFailedError,
            match=rf"job {re.escape(job.job_id)} ended failed \(error code 441\): "
            r".*locked\.pdf",
        ) as info:
            client.wait_for_job(job)

        assert info.value.job_id == job.job_id
        assert info.value.status == "failed"

    def test_webp_fails_merge_job_with_415(
        self, client: PdfcoClient, tmp_path: Path
    ) -> None:
        image = make_image(tmp_path, "photo.webp")
        upload = client.upload_file(image, content_type="image/webp")
        job = client.submit_merge([upload.url], name="out.pdf")

        with pytest.raises(
            JobFailedError, match=r"ended failed \(error code 415\): .*photo\.webp"
        ):
            client.wait_for_job(job)


ERROR_TABLE = [
    pytest.param(401, "Unauthorized", AuthenticationError, id="401"),
    pytest.param(402, "Not enough credits", InsufficientCreditsError, id="402"),
    pytest.param(403, "Not enough credits left", InsufficientCreditsError, id="403c"),
    pytest.param(403, "Access forbidden for a.pdf", InputRejectedError, id="403"),
    pytest.param(404, "Resource a.pdf not found", InputRejectedError, id="404"),
    pytest.param(405, "Timeout", ServerTimeoutError, id="405"),
    pytest.param(408, "Request timeout", ServerTimeoutError, id="408"),
    pytest.param(415, "Unsupported type of a.pdf", InputRejectedError, id="415"),
    pytest.param(429, "Too many requests", RateLimitedError, id="429"),
    pytest.param(441, "a.pdf is password-protected", InputRejectedError, id="441"),
    pytest.param(442, "a.pdf is damaged", InputRejectedError, id="442"),
    pytest.param(443, "a.pdf forbids it", InputRejectedError, id="443"),
    pytest.param(445, "Timeout error", ServerTimeoutError, id="445"),
    pytest.param(446, "Files missing", InputRejectedError, id="446"),
    pytest.param(448, "Invalid URL a.pdf", InputRejectedError, id="448"),
    pytest.param(452, "Invalid URL", InputRejectedError, id="452"),
    pytest.param(454, "Invalid parameters", InputRejectedError, id="454"),
    pytest.param(500, "Something went wrong", ServerError, id="500"),
    pytest.param(503, "Unavailable", ServerError, id="503"),
]


class TestErrorMapping:
    @pytest.mark.parametrize(("code", "message", "expected"), ERROR_TABLE)
    @pytest.mark.parametrize("in_body", [False, True], ids=["status", "body"])
    def test_code_maps_to_exception(
        self, code: int, message: str, expected: type[ApiError], in_body: bool
    ) -> None:
        body = {"error": True, "status": code, "message": message}
        with scripted_server() as server:
            server.route(
                "POST", "/v1/pdf/merge2", Reply(200 if in_body else code, body)
            )
            error = submit_and_catch(server, "in/a.pdf")

        assert type(error) is expected
        assert error.status_code == code
        assert error.endpoint == "POST /v1/pdf/merge2"
        assert f"HTTP {code} from" in str(error) or f"status {code} in" in str(error)
        assert message in str(error)
        assert "sig=" not in str(error)
        if expected is InputRejectedError:
            named = "a.pdf" in message
            assert isinstance(error, InputRejectedError)
            assert error.source == ("in/a.pdf" if named else None)

    def test_signed_url_in_message_is_redacted(self) -> None:
        body = {
            "error": True,
            "status": 400,
            "message": "Cannot read http://h/a.pdf?sig=s3",
        }
        with scripted_server() as server:
            server.route("POST", "/v1/pdf/merge2", Reply(400, body))
            error = submit_and_catch(server, "in/a.pdf")

        assert "Cannot read http://h/a.pdf." in str(error)
        assert "sig=" not in str(error)

    def test_html_error_body_is_quoted_and_truncated(self) -> None:
        html = "<html><body>" + "Bad gateway " * 50 + "</body></html>"
        with scripted_server() as server:
            server.route("POST", "/v1/pdf/merge2", Reply(502, html))
            error = submit_and_catch(server, "in/a.pdf")

        assert type(error) is ServerError
        assert "HTTP 502 with a body that is not JSON: '<html><body>Bad gateway" in (
            str(error)
        )
        assert len(str(error)) < 400

    def test_html_success_body_is_an_api_error(self) -> None:
        with scripted_server() as server:
            server.route("POST", "/v1/pdf/merge2", Reply(200, "<html>login</html>"))
            error = submit_and_catch(server, "in/a.pdf")

        assert type(error) is ApiError
        assert "HTTP 200 and a body that is not a JSON object: '<html>login" in (
            str(error)
        )

    def test_retry_after_header_sets_the_delay(self) -> None:
        slept: list[float] = []
        with scripted_server() as server:
            server.route(
                "GET",
                "/v1/account/credit/balance",
                Reply(429, {"error": True, "message": "slow"}, {"Retry-After": "7"}),
                Reply(200, {"remainingCredits": 55}),
            )
            settings = make_settings(
                server.base_url, "KEY", retry=RetryPolicy(max_attempts=3, max_delay=30)
            )
            with PdfcoClient(settings, sleep=slept.append) as client:
                balance = client.get_balance()
                stats = client.stats

        assert balance == 55
        assert slept == [7.0]
        assert stats.retries == {"HTTP 429": 1}
        assert stats.requests == 2

    def test_retry_after_date_capped_at_max_delay(self) -> None:
        slept: list[float] = []
        later = time.strftime(
            "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600)
        )
        with scripted_server() as server:
            server.route(
                "GET",
                "/v1/account/credit/balance",
                Reply(429, {"error": True, "message": "slow"}, {"Retry-After": later}),
                Reply(200, {"remainingCredits": 55}),
            )
            settings = make_settings(
                server.base_url, "KEY", retry=RetryPolicy(max_attempts=3, max_delay=30)
            )
            with PdfcoClient(settings, sleep=slept.append) as client:
                client.get_balance()

        assert slept == [30.0]

    def test_unknown_job_state_is_a_failure(self) -> None:
        with scripted_server() as server:
            server.route(
                "GET",
                "/v1/job/check",
                Reply(body={"status": "paused", "message": "on hold"}),
            )
            settings = make_settings(server.base_url, "KEY")
            with PdfcoClient(settings) as client:
                status = client.check_job("JOB1")
                job = MergeJob("JOB1", "http://x/r.pdf", "r.pdf", time.time(), 1e12)
                with pytest.raises(JobFailedError, match=r"'paused'.*on hold") as info:
                    client.wait_for_job(job)

        assert status.status == "failed"
        assert info.value.job_id == "JOB1"

    def test_comma_in_url_rejected_before_sending(self) -> None:
        with scripted_server() as server:
            settings = make_settings(server.base_url, "KEY")
            with (
                PdfcoClient(settings) as client,
                pytest.raises(
                    InputRejectedError, match=r"input b\.pdf contains a comma"
                ),
            ):
                client.submit_merge(
                    ["http://h/a.pdf", "http://h/x,y.pdf"],
                    name="out.pdf",
                    labels=["a.pdf", "b.pdf"],
                )

        assert server.requests == []

    def test_connection_refused_is_transport_error(self) -> None:
        port = free_port()
        settings = make_settings(
            f"http://127.0.0.1:{port}/v1", "KEY", retry=RetryPolicy(max_attempts=2)
        )
        with (
            PdfcoClient(settings, sleep=no_sleep) as client,
            pytest.raises(
                TransportError,
                match=rf"GET http://127\.0\.0\.1:{port}/v1/account/credit/balance "
                r"failed: connection refused\. \(gave up after 2 attempts\)",
            ),
        ):
            client.get_balance()

        assert client.stats.retries == {"connection refused": 1}


def submit_and_catch(server: ScriptedServer, label: str) -> ApiError:
    settings = make_settings(server.base_url, "KEY", retry=RetryPolicy(max_attempts=1))
    url = f"{server.origin}/files/a.pdf?sig=secret"
    with PdfcoClient(settings) as client, pytest.raises(ApiError) as info:
        client.submit_merge([url], name="out.pdf", labels=[label])
    return info.value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def no_sleep(seconds: float) -> None:
    del seconds


class TestTransientFaults:
    @pytest.mark.parametrize(
        ("fault", "reason"),
        [
            ("429", "HTTP 429"),
            ("500", "HTTP 500"),
            ("503", "HTTP 503"),
            ("error200", "HTTP 500"),
            ("reset", "connection reset"),
        ],
    )
    def test_api_fault_retried_to_success(
        self, sandbox: Sandbox, pdfs: list[Path], fault: str, reason: str
    ) -> None:
        client = faults_off_after_first_retry(sandbox)
        sandbox.set_faults(f"{fault}:1.0")

        upload = client.upload_file(pdfs[0])

        assert upload.url.startswith(sandbox.origin)
        assert client.stats.retries == {reason: 1}
        assert sandbox.counters()["faults"] == {fault: 1}

    @pytest.mark.parametrize(
        ("fault", "reason"),
        [
            ("408", "HTTP 408"),
            ("445", "HTTP 445"),
            ("429", "HTTP 429"),
            ("503", "HTTP 503"),
            ("error200", "HTTP 500"),
            ("reset", "connection reset"),
        ],
    )
    def test_merge_fault_resubmitted_once(
        self, sandbox: Sandbox, pdfs: list[Path], fault: str, reason: str
    ) -> None:
        client = faults_off_after_first_retry(sandbox)
        urls = upload_all(client, pdfs[:2])
        sandbox.set_faults(f"{fault}:1.0")

        job = client.submit_merge(urls, name="out.pdf")

        assert job.job_id
        assert client.stats.retries == {reason: 1}
        assert sandbox.counters()["merge_submissions_total"] == 1

    def test_download_reset_retried(
        self, sandbox: Sandbox, pdfs: list[Path], tmp_path: Path
    ) -> None:
        client = faults_off_after_first_retry(sandbox)
        upload = client.upload_file(pdfs[1])
        sandbox.set_faults("reset:1.0")

        path = client.download(upload.url, tmp_path / "copy.pdf")

        assert len(PdfReader(path).pages) == 2
        assert client.stats.retries == {"connection reset": 1}

    def test_seeded_random_faults_survived(
        self, pdfco_sandbox_factory: SandboxFactory, pdfs: list[Path], tmp_path: Path
    ) -> None:
        sandbox = pdfco_sandbox_factory(
            faults="429:0.2,500:0.1,503:0.1,reset:0.1,error200:0.1", faults_seed=1
        )
        retry = RetryPolicy(max_attempts=10, base_delay=0.01, max_delay=0.02)
        settings = make_settings(sandbox.base_url, sandbox.api_key, retry=retry)
        with PdfcoClient(settings) as client:
            job = client.submit_merge(upload_all(client, pdfs), name="m.pdf")
            status = client.wait_for_job(job)
            path = client.download(status.url or job.result_url, tmp_path / "m.pdf")
            retries = client.stats.total_retries

        assert len(PdfReader(path).pages) == 6
        assert retries == sum(sandbox.counters()["faults"].values())
        assert retries > 0
        assert sandbox.counters()["merge_submissions_total"] == 1

    def test_merge_read_timeout_not_resubmitted(
        self, pdfco_sandbox_factory: SandboxFactory, pdfs: list[Path]
    ) -> None:
        sandbox = pdfco_sandbox_factory(slow_seconds=1.0)
        settings = make_settings(sandbox.base_url, sandbox.api_key, read_timeout=0.3)
        with PdfcoClient(settings) as client:
            urls = upload_all(client, pdfs[:2])
            sandbox.set_faults("slow:1.0")
            with pytest.raises(
                SubmissionUnconfirmedError,
                match=r"was sent but no response arrived \(read timeout\)\. PDF\.co "
                r"may have created the job",
            ) as info:
                client.submit_merge(urls, name="out.pdf")
        sandbox.set_faults("")

        assert not info.value.transient
        assert wait_for_merge_requests(sandbox) == 1
        assert client.stats.retries == {}


def faults_off_after_first_retry(sandbox: Sandbox) -> PdfcoClient:
    """Return a client whose first retry delay switches the sandbox faults off."""

    def sleep(seconds: float) -> None:
        del seconds
        sandbox.set_faults("")

    settings = make_settings(sandbox.base_url, sandbox.api_key)
    return PdfcoClient(settings, sleep=sleep)


def wait_for_merge_requests(sandbox: Sandbox) -> int:
    """Wait up to 5 s for the sandbox to log a merge request; return how many."""
    for _ in range(50):
        if requests_seen(sandbox, "POST /v1/pdf/merge2"):
            break
        time.sleep(0.1)
    time.sleep(0.2)
    return sum(requests_seen(sandbox, "POST /v1/pdf/merge2").values())


class TestPolling:
    def test_intervals_back_off_until_deadline(
        self, pdfco_sandbox_factory: SandboxFactory, pdfs: list[Path]
    ) -> None:
        sandbox = pdfco_sandbox_factory(job_latency=100_000)
        fake = FakeTime()
        polling = PollingPolicy(
            first_interval=1,
            max_interval=8,
            backoff=2,
            deadline=60,
            force_check_after=1_000,
        )
        settings = make_settings(sandbox.base_url, sandbox.api_key, polling=polling)
        polls: list[tuple[str, float]] = []
        with PdfcoClient(settings, sleep=fake.sleep, clock=fake.clock) as client:
            job = client.submit_merge(upload_all(client, pdfs[:1]), name="o.pdf")
            with pytest.raises(
                JobTimeoutError,
                match=rf"Merge job {re.escape(job.job_id)} was still working after "
                r"60 s \(\d+ checks; deadline 60 s",
            ) as info:
                client.wait_for_job(
                    job, on_poll=lambda s, t: polls.append((s.status, t))
                )

        expected = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
        for slept, nominal in zip(fake.sleeps, expected, strict=False):
            assert 0.9 * nominal <= slept <= nominal
        assert sum(fake.sleeps) == pytest.approx(60.0)
        assert {status for status, _ in polls} == {"working"}
        assert len(polls) == len(fake.sleeps)
        assert requests_seen(sandbox, "GET /v1/job/check") == {"200": len(polls)}
        assert info.value.job_id == job.job_id

    def test_force_check_detects_unknown_job(
        self, pdfco_sandbox_factory: SandboxFactory, pdfs: list[Path]
    ) -> None:
        sandbox = pdfco_sandbox_factory()
        fake = FakeTime()
        polling = PollingPolicy(
            first_interval=1,
            max_interval=8,
            backoff=2,
            deadline=600,
            force_check_after=10,
        )
        settings = make_settings(sandbox.base_url, sandbox.api_key, polling=polling)
        statuses: list[str] = []
        with PdfcoClient(settings, sleep=fake.sleep, clock=fake.clock) as client:
            urls = upload_all(client, pdfs[:1])
            sandbox.set_faults("job-unknown:1.0")
            job = client.submit_merge(urls, name="o.pdf")
            with pytest.raises(
                JobFailedError,
                match=rf"PDF.co does not know job {re.escape(job.job_id)}; it may "
                "have expired or never existed",
            ) as info:
                client.wait_for_job(job, on_poll=lambda s, t: statuses.append(s.status))

        assert statuses == ["working", "working", "working", "unknown"]
        assert info.value.status == "unknown"

    def test_deadline_before_force_check_still_forces(
        self, pdfco_sandbox_factory: SandboxFactory, pdfs: list[Path]
    ) -> None:
        sandbox = pdfco_sandbox_factory()
        fake = FakeTime()
        polling = PollingPolicy(
            first_interval=1, max_interval=2, deadline=5, force_check_after=120
        )
        settings = make_settings(sandbox.base_url, sandbox.api_key, polling=polling)
        statuses: list[str] = []
        with PdfcoClient(settings, sleep=fake.sleep, clock=fake.clock) as client:
            urls = upload_all(client, pdfs[:1])
            sandbox.set_faults("job-unknown:1.0")
            job = client.submit_merge(urls, name="o.pdf")
            with pytest.raises(
                JobFailedError, match=rf"does not know job {re.escape(job.job_id)}"
            ):
                client.wait_for_job(job, on_poll=lambda s, t: statuses.append(s.status))

        assert statuses[-1] == "unknown"
        assert set(statuses[:-1]) == {"working"}
        assert sum(fake.sleeps) == pytest.approx(5.0)

    @pytest.mark.parametrize(
        ("fault", "state", "message"),
        [
            ("job-failed", "failed", r"ended failed \(error code 442\): Input part1"),
            ("job-aborted", "aborted", r"ended aborted: The job was aborted"),
        ],
    )
    def test_failed_job_raises_with_job_id(
        self,
        sandbox: Sandbox,
        client: PdfcoClient,
        pdfs: list[Path],
        fault: str,
        state: str,
        message: str,
    ) -> None:
        urls = upload_all(client, pdfs[:1])
        sandbox.set_faults(f"{fault}:1.0")
        job = client.submit_merge(urls, name="o.pdf")

        with pytest.raises(JobFailedError, match=message) as info:
            client.wait_for_job(job)

        assert info.value.job_id == job.job_id
        assert info.value.status == state
        assert job.job_id in str(info.value)

    def test_failed_checks_do_not_end_wait(
        self, sandbox: Sandbox, pdfs: list[Path], caplog: pytest.LogCaptureFixture
    ) -> None:
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            if len(sleeps) == 3:
                sandbox.set_faults("")

        settings = make_settings(
            sandbox.base_url, sandbox.api_key, retry=RetryPolicy(max_attempts=2)
        )
        with PdfcoClient(settings, sleep=sleep) as client:
            job = client.submit_merge(upload_all(client, pdfs[:1]), name="o.pdf")
            sandbox.set_faults("503:1.0")
            status = client.wait_for_job(job)
            retries = client.stats.retries

        assert status.status == "success"
        assert retries == {"HTTP 503": 1}
        assert f"check of job {job.job_id} failed: PDF.co failed" in caplog.text
        checks = requests_seen(sandbox, "GET /v1/job/check")
        assert checks["503"] == 2
        assert checks["200"] >= 1

    def test_check_job_force_on_unknown_id(self, client: PdfcoClient) -> None:
        plain = client.check_job("NOSUCHJOB")
        forced = client.check_job("NOSUCHJOB", force=True)

        assert plain == JobStatus(
            job_id="NOSUCHJOB",
            status="working",
            credits=2,
            remaining_credits=plain.remaining_credits,
        )
        assert forced.status == "unknown"
        assert client.stats.job_checks == 2


class TestDownload:
    def test_truncated_download_leaves_no_file(
        self, sandbox: Sandbox, client: PdfcoClient, pdfs: list[Path], tmp_path: Path
    ) -> None:
        upload = client.upload_file(pdfs[2])
        sandbox.set_faults("truncate:1.0")
        target = tmp_path / "out" / "copy.pdf"

        with pytest.raises(
            DownloadError, match=r"stopped after \d+ of \d+ bytes .*gave up after 4"
        ):
            client.download(upload.url, target)

        assert list(target.parent.iterdir()) == []
        assert client.stats.retries == {"incomplete download": 3}

    def test_non_pdf_download_rejected(
        self, client: PdfcoClient, tmp_path: Path
    ) -> None:
        text = tmp_path / "notes.txt"
        text.write_text("not a pdf at all\n")
        upload = client.upload_file(text, content_type="text/plain")
        target = tmp_path / "out" / "notes.pdf"

        with pytest.raises(
            DownloadError, match=r"is not a PDF: it starts with b'not a"
        ):
            client.download(upload.url, target)

        assert list(target.parent.iterdir()) == []

    def test_expired_result_raises_result_expired(
        self, sandbox: Sandbox, pdfs: list[Path], tmp_path: Path
    ) -> None:
        offset = [0.0]
        settings = make_settings(sandbox.base_url, sandbox.api_key)
        with PdfcoClient(settings, clock=lambda: time.time() + offset[0]) as client:
            job = client.submit_merge(upload_all(client, pdfs[:2]), name="o.pdf")
            status = client.wait_for_job(job)
            sandbox.clock.advance(2 * 3600)
            offset[0] = 2 * 3600
            with pytest.raises(
                ResultExpiredError,
                match=rf"The result link of job {re.escape(job.job_id)} expired at "
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00; run the merge again",
            ):
                client.download(
                    status.url or job.result_url, tmp_path / "o.pdf", job_id=job.job_id
                )

        assert list(tmp_path.glob("*.pdf")) == []


class TestJobStore:
    def test_resume_avoids_second_submission(
        self, sandbox: Sandbox, pdfs: list[Path], tmp_path: Path
    ) -> None:
        settings = make_settings(sandbox.base_url, sandbox.api_key)
        store_path = tmp_path / "state" / "jobs.json"
        key = merge_key(settings, ["h1", "h2"], {"name": "o.pdf"})
        with PdfcoClient(settings, job_store=JobStore(store_path)) as first:
            urls = upload_all(first, pdfs[:2])
            submitted = first.submit_or_resume(urls, name="o.pdf", store_key=key)

        with PdfcoClient(settings, job_store=JobStore(store_path)) as second:
            resumed = second.submit_or_resume(urls, name="o.pdf", store_key=key)
            status = second.wait_for_job(resumed)
            second.download(status.url or resumed.result_url, tmp_path / "o.pdf")

        assert not submitted.resumed
        assert resumed.resumed
        assert resumed.job_id == submitted.job_id
        assert sandbox.counters()["merge_submissions_total"] == 1
        assert len(PdfReader(tmp_path / "o.pdf").pages) == 3

    def test_failed_job_forgotten_so_next_run_submits(
        self, sandbox: Sandbox, pdfs: list[Path], tmp_path: Path
    ) -> None:
        settings = make_settings(sandbox.base_url, sandbox.api_key)
        store = JobStore(tmp_path / "jobs.json")
        key = merge_key(settings, ["h1"], {"name": "o.pdf"})
        with PdfcoClient(settings, job_store=store) as client:
            urls = upload_all(client, pdfs[:1])
            sandbox.set_faults("job-failed:1.0")
            job = client.submit_or_resume(urls, name="o.pdf", store_key=key)
            with pytest.raises(JobFailedError):
                client.wait_for_job(job)

        assert store.find_job(key, time.time()) is None

    def test_upload_reused_without_second_put(
        self,
        sandbox: Sandbox,
        pdfs: list[Path],
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        settings = make_settings(sandbox.base_url, sandbox.api_key)
        store = JobStore(tmp_path / "jobs.json")
        with (
            caplog.at_level(logging.INFO, logger="pdfco_tasks"),
            PdfcoClient(settings, job_store=store) as client,
        ):
            first = client.upload_file(pdfs[0])
            second = client.upload_file(pdfs[0])

        assert second.url == first.url
        assert first.credits == 7
        assert second.credits == 0
        assert sandbox.counters()["puts"] == 1
        assert sandbox.counters()["presigned_urls"] == 1
        assert f"reused upload of {pdfs[0]}" in caplog.text

    def test_deleted_upload_uploaded_again(
        self,
        sandbox: Sandbox,
        pdfs: list[Path],
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        settings = make_settings(sandbox.base_url, sandbox.api_key)
        store = JobStore(tmp_path / "jobs.json")
        with (
            caplog.at_level(logging.INFO, logger="pdfco_tasks"),
            PdfcoClient(settings, job_store=store) as client,
        ):
            first = client.upload_file(pdfs[0])
            # PDF.co deletes uploads after an hour of its own clock, which
            # here runs ahead of the client's.
            sandbox.clock.advance(3700)
            second = client.upload_file(pdfs[0])
            third = client.upload_file(pdfs[0])

        assert second.url != first.url
        assert second.credits == 7
        assert third.url == second.url
        assert third.credits == 0
        assert sandbox.counters()["puts"] == 2
        assert requests_seen(sandbox, "GET file") == {"403": 1, "206": 1}
        assert f"upload of {pdfs[0]}" in caplog.text
        assert "is gone from PDF.co; uploading it again" in caplog.text

    def test_uploads_not_shared_between_accounts(
        self, pdfco_sandbox_factory: SandboxFactory, pdfs: list[Path], tmp_path: Path
    ) -> None:
        sandbox = pdfco_sandbox_factory(api_keys=("KEY-A", "KEY-B"))
        store = JobStore(tmp_path / "jobs.json")
        for key in ("KEY-A", "KEY-B"):
            settings = make_settings(sandbox.base_url, key)
            with PdfcoClient(settings, job_store=store) as client:
                client.upload_file(pdfs[0])

        assert sandbox.counters()["puts"] == 2
        assert "KEY-A" not in (tmp_path / "jobs.json").read_text()


class TestBudget:
    def test_balance_below_minimum_blocks_submission(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox = pdfco_sandbox_factory(credits=100)
        settings = make_settings(
            sandbox.base_url, sandbox.api_key, min_remaining_credits=1000
        )
        with (
            PdfcoClient(settings) as client,
            pytest.raises(
                BudgetExceededError,
                match=r"balance is 100 credits, below the min_remaining_credits of "
                r"1000; nothing was submitted",
            ),
        ):
            client.submit_merge([f"{sandbox.origin}/x/a.pdf"], name="o.pdf")

        assert sandbox.counters()["merge_submissions_total"] == 0
        assert requests_seen(sandbox, "GET /v1/account/credit/balance") == {"200": 1}
