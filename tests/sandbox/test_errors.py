"""Error responses: status codes, documented bodies and messages."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable

import pytest
import requests

from pdfco_tasks.sandbox import Sandbox
from tests.sandbox.conftest import KEY
from tests.sandbox.helpers import Api
from tests.sandbox.inputs import pdf_bytes

LOOPBACK_URL = "http://127.0.0.1:9/a.pdf"
RATE_LIMIT_BODY = {
    "error": True,
    "status": 429,
    "message": "Too many requests (limit by your current plan). Please try again later",
}


@pytest.fixture(scope="module")
def one_page(sandbox: Sandbox) -> str:
    return Api(sandbox.base_url, KEY).upload(pdf_bytes(1), "one.pdf")


class TestAuthentication:
    @pytest.mark.parametrize(
        "path",
        [
            "/account/credit/balance",
            "/pdf/merge2",
            "/job/check",
            "/file/upload/get-presigned-url",
            "/pdf/info",
            "/file/delete",
        ],
    )
    def test_missing_key_401(self, api: Api, path: str) -> None:
        response = requests.post(api.base_url + path, timeout=30)

        assert response.status_code == 401
        assert response.json()["error"] is True
        assert response.json()["status"] == 401
        assert response.json()["message"].startswith("Unauthorized")

    def test_unknown_key_401(self, api: Api) -> None:
        response = api.get("/account/credit/balance", key="wrong-key")

        assert response.status_code == 401
        assert "x-api-key" in response.json()["message"]

    def test_key_in_query_accepted(self, api: Api) -> None:
        response = requests.get(
            api.base_url + "/account/credit/balance",
            params={"x-api-key": KEY},
            timeout=30,
        )

        assert response.status_code == 200

    def test_error_body_never_echoes_key(self, api: Api) -> None:
        response = api.get("/account/credit/balance", key="secret-wrong-key")

        assert "secret-wrong-key" not in response.text


class TestBadParameters:
    @pytest.mark.parametrize(
        ("params", "message"),
        [
            pytest.param({}, "Parameter 'url' is required", id="missing-url"),
            pytest.param({"url": " , "}, "Parameter 'url' is required", id="empty"),
            pytest.param(
                {"url": LOOPBACK_URL, "async": "maybe"},
                "Parameter 'async' must be true or false",
                id="async",
            ),
            pytest.param(
                {"url": LOOPBACK_URL, "expiration": "soon"},
                "Parameter 'expiration' must be an integer",
                id="exp",
            ),
            pytest.param(
                {"url": LOOPBACK_URL, "expiration": "0"},
                "Parameter 'expiration' must be >= 1",
                id="exp-zero",
            ),
        ],
    )
    def test_bad_merge_parameters_400(
        self, api: Api, params: dict[str, str], message: str
    ) -> None:
        response = api.post("/pdf/merge2", data=params)

        assert response.status_code == 400
        assert response.json()["status"] == 400
        assert response.json()["error"] is True
        assert message in response.json()["message"]

    def test_malformed_json_400(self, api: Api) -> None:
        response = api.post(
            "/pdf/merge2",
            data="{not json",
            headers={"content-type": "application/json"},
        )

        assert response.status_code == 400
        assert "not valid JSON" in response.json()["message"]

    def test_body_over_4_mb_400(self, api: Api) -> None:
        response = api.post("/pdf/merge2", data={"url": "x" * (4 * 1024 * 1024 + 1)})

        assert response.status_code == 400
        assert "larger than 4 MB" in response.json()["message"]

    @pytest.mark.parametrize("profiles", ["{not json", "[1, 2]"])
    def test_bad_profiles_444(self, api: Api, one_page: str, profiles: str) -> None:
        response = api.merge([one_page], profiles=profiles)

        assert response.status_code == 444
        assert "Profiles parsing error" in response.json()["message"]

    def test_profiles_nested_too_deep_444(self, api: Api, one_page: str) -> None:
        deep = '{"a":' * 100_000 + "1" + "}" * 100_000

        response = api.post("/pdf/merge2", data={"url": one_page, "profiles": deep})

        assert response.status_code == 444
        assert response.json()["status"] == 444
        assert response.json()["message"] == (
            "Profiles parsing error: 'profiles' is nested too deeply for the JSON "
            "parser; send a shallower object"
        )

    def test_json_body_nested_too_deep_400(self, api: Api, one_page: str) -> None:
        deep = '{"a":' * 100_000 + "1" + "}" * 100_000
        body = '{"url": "' + one_page + '", "profiles": ' + deep + "}"

        response = api.post(
            "/pdf/merge2", data=body, headers={"content-type": "application/json"}
        )

        assert response.status_code == 400
        assert response.json()["error"] is True
        assert response.json()["message"] == (
            "Request body is nested too deeply for the JSON parser; "
            "send a shallower object"
        )

    @pytest.mark.parametrize("path", ["/pdf/merge2", "/pdf/info", "/file/delete"])
    def test_unparsable_url_400(self, api: Api, path: str) -> None:
        response = api.post(path, data={"url": "http://[::1/x.pdf"})

        assert response.status_code == 400
        assert response.json()["status"] == 400
        assert response.json()["message"] == "Invalid input URL: 'x.pdf'"

    def test_unparsable_url_label_hides_query(self, api: Api) -> None:
        response = api.post(
            "/pdf/merge2", data={"url": "http://[::1/in.pdf?X-Amz-Signature=secret"}
        )

        assert response.status_code == 400
        assert response.json()["message"] == "Invalid input URL: 'in.pdf'"

    def test_non_ascii_signature_input_400(self, api: Api, one_page: str) -> None:
        forged = re.sub(
            r"X-Amz-Signature=[0-9a-f]+", "X-Amz-Signature=%C3%A9", one_page
        )

        response = api.merge([forged])

        assert response.status_code == 400
        assert response.json()["message"] == (
            "Cannot read input one.pdf: The request signature we calculated does "
            "not match the signature you provided. Check your key and signing "
            "method. (SignatureDoesNotMatch)"
        )

    def test_unknown_endpoint_404(self, api: Api) -> None:
        response = api.get("/pdf/unknown")

        assert response.status_code == 404
        assert response.json()["message"] == "Endpoint /v1/pdf/unknown not found"

    def test_expiration_over_a_day_clamped(self, api: Api, one_page: str) -> None:
        body = api.merge([one_page], expiration=10_000).json()

        assert body["jobId"].endswith("-1440")


class TestInputErrors:
    def test_password_pdf_441(self, api: Api) -> None:
        url = api.upload(pdf_bytes(1, user_password="secret"), "locked.pdf")

        response = api.merge([url])

        assert response.status_code == 441
        assert response.json()["status"] == 441
        assert "locked.pdf is protected by a password" in response.json()["message"]

    def test_owner_password_only_pdf_merges(self, api: Api) -> None:
        url = api.upload(pdf_bytes(2, owner_password="owner"), "owner.pdf")

        response = api.merge([url])

        assert response.status_code == 200
        assert response.json()["pageCount"] == 2

    def test_damaged_pdf_442(self, api: Api) -> None:
        url = api.upload(b"%PDF-1.7\nnot really", "damaged.pdf")

        response = api.merge([url])

        assert response.status_code == 442
        assert "damaged.pdf is damaged" in response.json()["message"]

    def test_unknown_binary_type_415(self, api: Api) -> None:
        url = api.upload(b"\x00\x01\x02binary", "blob.xyz")

        response = api.merge([url])

        assert response.status_code == 415
        assert "Unsupported input blob.xyz" in response.json()["message"]

    def test_missing_upload_400(self, api: Api) -> None:
        body = api.presign("never-put.pdf")

        response = api.merge([body["url"]])

        assert response.status_code == 400
        assert "never-put.pdf" in response.json()["message"]


class TestCredits:
    def test_presign_without_credits_402(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(credits=10)
        api = Api(sandbox.base_url, sandbox.api_key)
        api.presign("a.pdf")

        response = api.get("/file/upload/get-presigned-url", params={"name": "b"})

        assert response.status_code == 402
        assert response.json() == {
            "error": True,
            "status": 402,
            "message": "Not enough credits",
        }
        assert sandbox.balance() == 3

    def test_sync_merge_over_balance_402(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(credits=7 + 5)
        api = Api(sandbox.base_url, sandbox.api_key)
        url = api.upload(pdf_bytes(3), "three.pdf")

        response = api.merge([url])

        assert response.status_code == 402
        assert response.json()["message"] == "Not enough credits"
        assert sandbox.balance() == 5
        assert sandbox.counters()["jobs"] == {"success": 1}

    def test_async_submit_without_credits_402(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(credits=8)
        api = Api(sandbox.base_url, sandbox.api_key)
        url = api.upload(pdf_bytes(1), "one.pdf")

        response = api.merge([url], is_async=True)

        assert response.status_code == 402
        assert sandbox.counters()["merge_submissions_total"] == 0

    def test_job_check_without_credits_402(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(credits=1)
        api = Api(sandbox.base_url, sandbox.api_key)

        response = api.get("/job/check", params={"jobid": "X"})

        assert response.status_code == 402

    def test_balances_kept_per_key(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(api_keys=("k1", "k2"), credits=100)
        Api(sandbox.base_url, "k1").presign("a.pdf")

        assert sandbox.balance("k1") == 93
        assert sandbox.balance("k2") == 100


class TestRateLimit:
    def test_over_limit_429_documented_body(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(rate_limit=0.01, rate_burst=2)
        api = Api(sandbox.base_url, sandbox.api_key)

        statuses = [api.get("/account/credit/balance") for _ in range(3)]

        assert [r.status_code for r in statuses] == [200, 200, 429]
        assert statuses[2].json() == RATE_LIMIT_BODY
        assert "retry-after" not in statuses[2].headers

    def test_limit_applies_per_key(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(
            api_keys=("k1", "k2"), rate_limit=0.01, rate_burst=1
        )
        first = Api(sandbox.base_url, "k1")
        second = Api(sandbox.base_url, "k2")

        first.get("/account/credit/balance")

        assert first.get("/account/credit/balance").status_code == 429
        assert second.get("/account/credit/balance").status_code == 200

    def test_file_urls_not_rate_limited(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(rate_limit=0.01, rate_burst=1)
        api = Api(sandbox.base_url, sandbox.api_key)
        url = api.upload(b"data", "a.bin")

        statuses = [requests.get(url, timeout=30).status_code for _ in range(3)]

        assert statuses == [200, 200, 200]


class TestTimeoutsAndInternalErrors:
    def test_sync_over_budget_408(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(sync_budget=0.0)
        api = Api(sandbox.base_url, sandbox.api_key)
        url = api.upload(pdf_bytes(1), "a.pdf")
        before = sandbox.balance()

        response = api.merge([url])

        assert response.status_code == 408
        assert response.json()["status"] == 408
        assert "Timeout error" in response.json()["message"]
        assert "async=true" in response.json()["message"]
        assert sandbox.balance() == before

    def test_internal_failure_500_without_traceback(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory()
        api = Api(sandbox.base_url, sandbox.api_key)
        url = api.upload(pdf_bytes(1), "a.pdf")
        shutil.rmtree(sandbox.data_dir / "work")

        merge = api.merge([url])
        info = api.post("/pdf/info", json={"url": url})

        assert merge.status_code == 500
        assert (
            merge.json()["message"] == "Internal error while merging; please try again"
        )
        assert info.status_code == 500
        assert info.json()["error"] is True
        assert "Traceback" not in merge.text + info.text
        assert "FileNotFoundError" not in merge.text + info.text


class TestErrorsAs200:
    def test_errors_sent_with_http_200(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(errors_as_200=True)
        api = Api(sandbox.base_url, sandbox.api_key)

        unauthorized = api.get("/account/credit/balance", key="nope")
        bad = api.post("/pdf/merge2", json={})

        assert unauthorized.status_code == 200
        assert unauthorized.json()["status"] == 401
        assert unauthorized.json()["error"] is True
        assert bad.status_code == 200
        assert bad.json()["status"] == 400

    def test_success_unchanged(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(errors_as_200=True)
        api = Api(sandbox.base_url, sandbox.api_key)

        body = api.get("/account/credit/balance").json()

        assert body["error"] is False
        assert body["status"] == 200
