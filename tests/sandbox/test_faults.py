"""Fault injection: one test per fault kind, seeding and run-time changes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from pdfco_tasks.sandbox import Sandbox
from tests.sandbox.helpers import Api, download, page_count
from tests.sandbox.inputs import pdf_bytes

SandboxFactory = Callable[..., Sandbox]


def start(factory: SandboxFactory, **kwargs: object) -> tuple[Sandbox, Api]:
    sandbox = factory(**kwargs)
    return sandbox, Api(sandbox.base_url, sandbox.api_key)


class TestRequestFaults:
    @pytest.mark.parametrize("code", [429, 500, 503])
    def test_status_fault_before_any_effect(
        self, pdfco_sandbox_factory: SandboxFactory, code: int
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory, faults=f"{code}:1")
        before = sandbox.balance()

        response = api.get("/file/upload/get-presigned-url", params={"name": "a"})

        assert response.status_code == code
        assert response.json()["error"] is True
        assert response.json()["status"] == code
        assert response.json()["message"]
        assert sandbox.balance() == before
        assert sandbox.counters()["presigned_urls"] == 0
        assert sandbox.counters()["faults"] == {str(code): 1}

    def test_429_fault_uses_documented_message(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        _, api = start(pdfco_sandbox_factory, faults="429:1")

        response = api.get("/account/credit/balance")

        assert response.json()["message"] == (
            "Too many requests (limit by your current plan). Please try again later"
        )

    def test_status_fault_creates_no_job(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        url = api.upload(pdf_bytes(1), "a.pdf")
        sandbox.set_faults("503:1")
        before = sandbox.balance()

        response = api.merge([url], is_async=True)

        assert response.status_code == 503
        assert sandbox.balance() == before
        assert sandbox.counters()["merge_submissions_total"] == 0

    def test_error200_fault(self, pdfco_sandbox_factory: SandboxFactory) -> None:
        sandbox, api = start(pdfco_sandbox_factory, faults="error200:1")
        before = sandbox.balance()

        response = api.get("/file/upload/get-presigned-url", params={"name": "a"})

        assert response.status_code == 200
        assert response.json()["error"] is True
        assert response.json()["status"] == 500
        assert sandbox.balance() == before

    def test_reset_fault_drops_connection(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory, faults="reset:1")
        before = sandbox.balance()

        with pytest.raises(requests.ConnectionError):
            api.get("/file/upload/get-presigned-url", params={"name": "a"})

        assert sandbox.balance() == before
        assert sandbox.counters()["presigned_urls"] == 0
        assert sandbox.counters()["faults"] == {"reset": 1}

    def test_reset_fault_on_post_with_body(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory, faults="reset:1")

        with pytest.raises(requests.ConnectionError):
            api.post("/pdf/merge2", json={"url": "http://127.0.0.1:9/a.pdf"})

        assert sandbox.counters()["merge_submissions_total"] == 0

    def test_slow_fault_delays_then_processes(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory, faults="slow:1", slow_seconds=0.2)

        body = api.presign("slow.pdf")

        assert body["error"] is False
        assert sandbox.counters()["presigned_urls"] == 1
        assert sandbox.counters()["faults"] == {"slow": 1}

    @pytest.mark.parametrize("code", [408, 445])
    def test_timeout_fault_on_merge_only(
        self, pdfco_sandbox_factory: SandboxFactory, code: int
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        url = api.upload(pdf_bytes(1), "a.pdf")
        sandbox.set_faults(f"{code}:1")
        before = sandbox.balance()

        merge = api.merge([url])
        balance = api.get("/account/credit/balance")

        assert merge.status_code == code
        assert merge.json()["status"] == code
        assert "Timeout error" in merge.json()["message"]
        assert balance.status_code == 200
        assert sandbox.balance() == before
        assert sandbox.counters()["merge_submissions_total"] == 0

    def test_faults_skip_file_put(self, pdfco_sandbox_factory: SandboxFactory) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        body = api.presign("a.pdf")
        sandbox.set_faults("500:1,429:1,503:1,error200:1")

        put = requests.put(body["presignedUrl"], data=b"x", timeout=30)

        assert put.status_code == 200


class TestJobFaults:
    def test_job_failed_fault_refunds(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        url = api.upload(pdf_bytes(2), "input.pdf")
        sandbox.set_faults("job-failed:1")
        before = sandbox.balance()

        final = api.merge_async([url])

        assert final["status"] == "failed"
        assert final["error"] is True
        assert final["errorCode"] == 442
        assert "input.pdf" in final["message"]
        checks = sandbox.counters()["requests"]["GET /v1/job/check"]["200"]
        assert sandbox.balance() == before - 2 * checks
        assert sandbox.counters()["jobs"] == {"failed": 1}

    def test_job_aborted_fault_refunds(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        url = api.upload(pdf_bytes(1), "a.pdf")
        sandbox.set_faults("job-aborted:1")
        before = sandbox.balance()

        final = api.merge_async([url])

        assert final["status"] == "aborted"
        assert final["error"] is True
        checks = sandbox.counters()["requests"]["GET /v1/job/check"]["200"]
        assert sandbox.balance() == before - 2 * checks
        assert sandbox.counters()["jobs"] == {"aborted": 1}

    def test_job_unknown_fault_forgets_job(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        url = api.upload(pdf_bytes(1), "a.pdf")
        sandbox.set_faults("job-unknown:1")

        submitted = api.merge([url], is_async=True).json()
        checks = [api.check(submitted["jobId"])["status"] for _ in range(3)]
        forced = api.check(submitted["jobId"], force="true")

        assert submitted["error"] is False
        assert checks == ["working", "working", "working"]
        assert forced["status"] == "unknown"
        assert requests.get(submitted["url"], timeout=30).status_code == 404

    def test_job_faults_skip_sync_merges(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        url = api.upload(pdf_bytes(1), "a.pdf")
        sandbox.set_faults("job-failed:1")

        response = api.merge([url])

        assert response.status_code == 200

    @pytest.mark.parametrize("is_async", [False, True])
    def test_drop_page_fault_keeps_reported_count(
        self, pdfco_sandbox_factory: SandboxFactory, is_async: bool
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        url = api.upload(pdf_bytes(3), "three.pdf")
        sandbox.set_faults("drop-page:1")

        body = api.merge_async([url]) if is_async else api.merge([url]).json()

        assert body["pageCount"] == 3
        assert page_count(download(body["url"])) == 2
        assert sandbox.counters()["faults"] == {"drop-page": 1}


class TestDownloadFaults:
    def test_truncate_fault_cuts_body(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        url = api.upload(b"x" * 100_000, "big.bin")
        sandbox.set_faults("truncate:1")

        response = requests.get(url, stream=True, timeout=30)
        declared = int(response.headers["content-length"])
        received = bytearray()
        with pytest.raises(
            (requests.exceptions.ChunkedEncodingError, requests.ConnectionError)
        ):
            for chunk in response.iter_content(8192):
                received += chunk

        assert declared == 100_000
        assert len(received) < declared
        assert sandbox.counters()["faults"] == {"truncate": 1}

    def test_reset_fault_on_download(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        url = api.upload(b"data", "a.bin")
        sandbox.set_faults("reset:1")

        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=30)

        assert sandbox.counters()["requests"]["GET file"] == {"reset": 1}


class TestFaultControl:
    def test_same_seed_same_faults(self, pdfco_sandbox_factory: SandboxFactory) -> None:
        runs = []
        for _ in range(2):
            _, api = start(pdfco_sandbox_factory, faults="500:0.5", faults_seed=7)
            statuses = [
                api.get("/account/credit/balance").status_code for _ in range(20)
            ]
            runs.append(statuses)

        assert runs[0] == runs[1]
        assert set(runs[0]) == {200, 500}

    def test_set_faults_reseeds(self, pdfco_sandbox_factory: SandboxFactory) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        sequences = []
        for _ in range(2):
            sandbox.set_faults("503:0.5", seed=3)
            sequences.append(
                [api.get("/account/credit/balance").status_code for _ in range(12)]
            )

        assert sequences[0] == sequences[1]

    def test_faults_changed_over_http(
        self, pdfco_sandbox_factory: SandboxFactory
    ) -> None:
        sandbox, api = start(pdfco_sandbox_factory)
        control = sandbox.origin + "/__sandbox/faults"

        set_response = requests.post(
            control, json={"faults": "503:1", "seed": 1}, timeout=30
        )
        failing = api.get("/account/credit/balance")
        requests.post(control, json={"faults": ""}, timeout=30)
        passing = api.get("/account/credit/balance")

        assert set_response.json() == {"faults": {"503": 1.0}}
        assert failing.status_code == 503
        assert passing.status_code == 200

    @pytest.mark.parametrize("spec", ["boom:1", "500:2", "500:x", "500"])
    def test_invalid_fault_spec_rejected(
        self, pdfco_sandbox_factory: SandboxFactory, spec: str
    ) -> None:
        sandbox, _ = start(pdfco_sandbox_factory)

        response = requests.post(
            sandbox.origin + "/__sandbox/faults", json={"faults": spec}, timeout=30
        )

        assert response.status_code == 400
        assert response.json()["error"] is True
        with pytest.raises(ValueError, match="fault"):
            sandbox.set_faults(spec)
