"""Async merges and /v1/job/check: states, bodies and credits."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
import requests

from pdfco_tasks.sandbox import Sandbox
from tests.sandbox.conftest import KEY, OTHER_KEY
from tests.sandbox.helpers import Api, download, page_count
from tests.sandbox.inputs import pdf_bytes

VALID_TILL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


@pytest.fixture(scope="module")
def three_pages(sandbox: Sandbox) -> list[str]:
    """URLs of a 1-page and a 2-page PDF."""
    api = Api(sandbox.base_url, KEY)
    return [api.upload(pdf_bytes(1), "one.pdf"), api.upload(pdf_bytes(2), "two.pdf")]


class TestAsyncSubmit:
    def test_async_response_fields(
        self, api: Api, sandbox: Sandbox, three_pages: list[str]
    ) -> None:
        before = sandbox.balance(KEY)

        body = api.merge(three_pages, is_async=True, name="out.pdf").json()

        assert body["error"] is False
        assert body["status"] == 200
        assert body["name"] == "out.pdf"
        assert body["credits"] == 2
        assert body["remainingCredits"] == before - 2
        assert body["pageCount"] == 0
        assert re.fullmatch(r"[A-Z0-9]{32}--\d+-\d+", body["jobId"])
        assert urlsplit(body["url"]).path.startswith(f"/{body['jobId']}/")
        assert VALID_TILL.fullmatch(body["outputLinkValidTill"])
        assert isinstance(body["duration"], int)

    def test_async_job_succeeds_with_result(
        self, api: Api, three_pages: list[str]
    ) -> None:
        submitted = api.merge(three_pages, is_async=True).json()

        final = api.wait(submitted["jobId"])

        assert final["status"] == "success"
        assert final["message"] == "Success"
        assert final["error"] is False
        assert final["jobId"] == submitted["jobId"]
        assert final["url"] == submitted["url"]
        assert final["pageCount"] == 3
        assert isinstance(final["jobDuration"], int)
        assert final["outputLinkValidTill"] == submitted["outputLinkValidTill"]
        assert page_count(download(final["url"])) == 3

    def test_remaining_pages_charged_once_on_success(
        self, api: Api, sandbox: Sandbox, three_pages: list[str]
    ) -> None:
        submitted = api.merge(three_pages, is_async=True).json()
        final = api.wait(submitted["jobId"])
        after_first_success = sandbox.balance(KEY)

        again = api.check(submitted["jobId"])

        # merge2 costs 2 per page: 2 at submit, then 4 for pages 2-3 and 2 for
        # the call itself at the first job/check that reports success.
        assert final["credits"] == 2 + 4
        assert again["credits"] == 2
        assert sandbox.balance(KEY) == after_first_success - 2

    def test_result_not_readable_before_success(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(job_latency=3600)
        api = Api(sandbox.base_url, sandbox.api_key)
        url = api.upload(pdf_bytes(1), "a.pdf")
        submitted = api.merge([url], is_async=True).json()

        early = requests.get(submitted["url"], timeout=30)

        assert early.status_code in (403, 404)
        assert "NoSuchKey" in early.text


class TestJobCheck:
    def test_working_while_latency_runs(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(job_latency=600)
        api = Api(sandbox.base_url, sandbox.api_key)
        url = api.upload(pdf_bytes(1), "a.pdf")
        job_id = api.merge([url], is_async=True).json()["jobId"]

        working = api.check(job_id)
        sandbox.clock.advance(601)
        done = api.wait(job_id)

        assert working["status"] == "working"
        assert working["credits"] == 2
        assert "url" not in working
        assert done["status"] == "success"

    @pytest.mark.parametrize("name", ["jobid", "jobId", "JOBID"])
    def test_job_id_parameter_spellings(
        self, api: Api, three_pages: list[str], name: str
    ) -> None:
        job_id = api.merge(three_pages, is_async=True).json()["jobId"]
        api.wait(job_id)

        response = api.post("/job/check", json={name: job_id})

        assert response.json()["status"] == "success"

    def test_check_by_get_and_form_post(self, api: Api, three_pages: list[str]) -> None:
        job_id = api.merge(three_pages, is_async=True).json()["jobId"]
        api.wait(job_id)

        by_get = api.get("/job/check", params={"jobid": job_id}).json()
        by_form = api.post("/job/check", data={"jobid": job_id}).json()

        assert by_get["status"] == "success"
        assert by_form["status"] == "success"

    def test_unknown_id_reports_working(self, api: Api) -> None:
        body = api.check("NOSUCHJOB0000000000000000000000A--1-60")

        assert body["status"] == "working"

    @pytest.mark.parametrize("force", ["true", "True", "1"])
    def test_unknown_id_with_force_reports_unknown(self, api: Api, force: str) -> None:
        body = api.check("NOSUCHJOB0000000000000000000000A--1-60", force=force)

        assert body["status"] == "unknown"

    def test_other_keys_job_is_unknown(self, api: Api, three_pages: list[str]) -> None:
        job_id = api.merge(three_pages, is_async=True).json()["jobId"]
        api.wait(job_id)
        other = Api(api.base_url, OTHER_KEY)

        body = other.check(job_id, force="true")

        assert body["status"] == "unknown"

    def test_each_check_costs_two_credits(self, api: Api, sandbox: Sandbox) -> None:
        before = sandbox.balance(KEY)

        first = api.check("NOSUCHJOB0000000000000000000000A--1-60")
        api.check("NOSUCHJOB0000000000000000000000A--1-60")

        assert first["credits"] == 2
        assert first["remainingCredits"] == before - 2
        assert sandbox.balance(KEY) == before - 4

    def test_missing_job_id_400(self, api: Api) -> None:
        response = api.get("/job/check")

        assert response.status_code == 400
        assert response.json() == {
            "error": True,
            "status": 400,
            "message": "Parameter 'jobid' is required",
        }


class TestFailedJobs:
    def test_damaged_input_fails_job_and_names_input(
        self, api: Api, sandbox: Sandbox, three_pages: list[str]
    ) -> None:
        broken = api.upload(b"%PDF-1.7 this is not a pdf", "broken.pdf")
        before = sandbox.balance(KEY)
        job_id = api.merge([three_pages[0], broken], is_async=True).json()["jobId"]

        final = api.wait(job_id)

        assert final["status"] == "failed"
        assert final["error"] is True
        assert final["errorCode"] == 442
        assert "broken.pdf" in final["message"]
        # The first-page charge (2) is refunded; only the checks cost credits.
        checks = (before - sandbox.balance(KEY)) // 2
        assert sandbox.balance(KEY) == before - 2 * checks

    def test_password_pdf_fails_with_441(self, api: Api) -> None:
        locked = api.upload(pdf_bytes(1, user_password="pw"), "locked.pdf")
        job_id = api.merge([locked], is_async=True).json()["jobId"]

        final = api.wait(job_id)

        assert final["status"] == "failed"
        assert final["errorCode"] == 441
        assert "locked.pdf" in final["message"]

    def test_expired_input_url_fails_job(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory()
        api = Api(sandbox.base_url, sandbox.api_key)
        url = api.upload(pdf_bytes(1), "stale.pdf")
        sandbox.clock.advance(3601)

        final = api.merge_async([url])

        assert final["status"] == "failed"
        assert final["errorCode"] == 400
        assert "stale.pdf" in final["message"]
        assert "expired" in final["message"]


class TestResultExpiry:
    def test_result_expires_after_default_hour(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory()
        api = Api(sandbox.base_url, sandbox.api_key)
        url = api.upload(pdf_bytes(1), "a.pdf")
        result = api.merge([url]).json()["url"]
        sandbox.clock.advance(3590)
        assert requests.get(result, timeout=30).status_code == 200

        sandbox.clock.advance(20)
        response = requests.get(result, timeout=30)

        assert response.status_code == 403
        assert "Request has expired" in response.text

    def test_expiration_parameter_extends_link(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory()
        api = Api(sandbox.base_url, sandbox.api_key)
        url = api.upload(pdf_bytes(1), "a.pdf")
        final = api.merge_async([url], expiration=120)
        sandbox.clock.advance(2 * 3600 - 60)
        assert requests.get(final["url"], timeout=30).status_code == 200

        sandbox.clock.advance(120)
        response = requests.get(final["url"], timeout=30)

        assert final["jobId"].endswith("-120")
        assert response.status_code == 403
        assert "AccessDenied" in response.text
