"""Balance, PDF info and file delete endpoints."""

from __future__ import annotations

import pytest
import requests

from pdfco_tasks.sandbox import Sandbox
from tests.sandbox.conftest import KEY
from tests.sandbox.helpers import Api
from tests.sandbox.inputs import pdf_bytes


class TestBalance:
    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_balance_reports_remaining_credits(
        self, api: Api, sandbox: Sandbox, method: str
    ) -> None:
        response = api.request(method, "/account/credit/balance")

        assert response.status_code == 200
        assert response.json()["remainingCredits"] == sandbox.balance(KEY)
        assert response.json()["error"] is False

    def test_balance_is_free(self, api: Api, sandbox: Sandbox) -> None:
        before = sandbox.balance(KEY)

        api.get("/account/credit/balance")

        assert sandbox.balance(KEY) == before


class TestInfo:
    def test_info_page_count(self, api: Api) -> None:
        url = api.upload(pdf_bytes(4, width=300, height=400), "four.pdf")

        body = api.post("/pdf/info", json={"url": url}).json()

        assert body["error"] is False
        assert body["status"] == 200
        assert body["info"]["PageCount"] == 4
        assert body["info"]["Encrypted"] is False
        assert body["info"]["PageRectangle"]["Width"] == 300
        assert body["info"]["PageRectangle"]["Height"] == 400
        assert body["credits"] == 1

    def test_info_encrypted_with_password(self, api: Api) -> None:
        url = api.upload(pdf_bytes(2, user_password="pw"), "locked.pdf")

        body = api.post("/pdf/info", data={"url": url, "password": "pw"}).json()

        assert body["info"]["PageCount"] == 2
        assert body["info"]["Encrypted"] is True

    def test_info_without_password_441(self, api: Api) -> None:
        url = api.upload(pdf_bytes(2, user_password="pw"), "locked.pdf")

        response = api.post("/pdf/info", json={"url": url})

        assert response.status_code == 441
        assert "locked.pdf" in response.json()["message"]

    def test_info_damaged_442(self, api: Api) -> None:
        url = api.upload(b"not a pdf at all", "junk.pdf")

        response = api.post("/pdf/info", json={"url": url})

        assert response.status_code == 442
        assert "junk.pdf" in response.json()["message"]

    def test_info_off_machine_400(self, api: Api) -> None:
        response = api.post("/pdf/info", json={"url": "https://example.com/a.pdf"})

        assert response.status_code == 400


class TestDelete:
    def test_delete_upload_removes_file(self, api: Api) -> None:
        url = api.upload(b"data", "gone.bin")

        response = api.post("/file/delete", json={"url": url})

        assert response.status_code == 200
        assert response.json()["error"] is False
        assert response.json()["status"] == 200
        assert requests.get(url, timeout=30).status_code == 404

    def test_delete_result(self, api: Api) -> None:
        url = api.upload(pdf_bytes(1), "a.pdf")
        result = api.merge([url]).json()["url"]

        api.post("/file/delete", data={"url": result})

        assert requests.get(result, timeout=30).status_code == 404

    def test_delete_unknown_404(self, api: Api, sandbox: Sandbox) -> None:
        url = f"{sandbox.origin}/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/x.pdf"

        response = api.post("/file/delete", json={"url": url})

        assert response.status_code == 404
        assert response.json()["message"] == "File x.pdf not found"
