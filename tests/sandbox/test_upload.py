"""Presigned upload, PUT and GET of file URLs, S3 style."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from pdfco_tasks.sandbox import Sandbox
from tests.sandbox.conftest import KEY
from tests.sandbox.helpers import Api, download
from tests.sandbox.inputs import pdf_bytes


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    """Yield `data` in pieces, so requests sends it chunked."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


class TestPresignedUrl:
    def test_presigned_url_fields(self, api: Api, sandbox: Sandbox) -> None:
        before = sandbox.balance(KEY)

        body = api.presign("report.pdf", "application/pdf")

        assert body["error"] is False
        assert body["status"] == 200
        assert body["name"] == "report.pdf"
        assert body["credits"] == 7
        assert body["remainingCredits"] == before - 7
        assert sandbox.balance(KEY) == before - 7
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", body["outputLinkValidTill"]
        )

    def test_presigned_urls_are_signed_s3_style(self, api: Api) -> None:
        body = api.presign("report.pdf", "application/pdf")

        put_query = parse_qs(urlsplit(body["presignedUrl"]).query)
        get_query = parse_qs(urlsplit(body["url"]).query)
        assert put_query["X-Amz-Expires"] == ["900"]
        assert put_query["X-Amz-SignedHeaders"] == ["content-type;host"]
        assert get_query["X-Amz-Expires"] == ["3600"]
        assert get_query["X-Amz-SignedHeaders"] == ["host"]
        assert urlsplit(body["url"]).path.endswith("/report.pdf")

    def test_name_reduced_to_base_name(self, api: Api) -> None:
        body = api.presign("../../etc/passwd")

        assert body["name"] == "passwd"
        assert "/etc/" not in urlsplit(body["url"]).path

    def test_name_without_usable_characters_defaults(self, api: Api) -> None:
        body = api.presign("../..")

        assert body["name"] == "file"


class TestPut:
    def test_put_then_get_returns_same_bytes(self, api: Api) -> None:
        data = pdf_bytes(2)

        url = api.upload(data, "two.pdf")

        response = requests.get(url, timeout=30)
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
        assert response.content == data

    def test_name_with_spaces_and_unicode(self, api: Api) -> None:
        url = api.upload(b"data", "my report \u00fc.pdf")

        assert download(url) == b"data"
        assert "/my%20report%20%C3%BC.pdf?" in url

    def test_put_answers_empty_200(self, api: Api) -> None:
        body = api.presign("a.bin", "application/octet-stream")

        put = requests.put(
            body["presignedUrl"],
            data=b"abc",
            headers={"content-type": "application/octet-stream"},
            timeout=30,
        )

        assert put.status_code == 200
        assert put.content == b""

    def test_put_streamed_in_chunks(self, api: Api) -> None:
        data = bytes(range(256)) * 4096
        body = api.presign("stream.bin", "application/octet-stream")

        put = requests.put(
            body["presignedUrl"],
            data=chunks(data, 10_000),
            headers={"content-type": "application/octet-stream"},
            timeout=30,
        )

        assert put.status_code == 200
        assert download(body["url"]) == data

    def test_put_needs_no_api_key(self, api: Api) -> None:
        body = api.presign("nokey.bin")

        put = requests.put(body["presignedUrl"], data=b"x", timeout=30)

        assert put.status_code == 200

    def test_put_unbound_accepts_any_content_type(self, api: Api) -> None:
        body = api.presign("any.bin")

        put = requests.put(
            body["presignedUrl"],
            data=b"x",
            headers={"content-type": "text/plain"},
            timeout=30,
        )

        assert put.status_code == 200

    def test_put_with_other_content_type_rejected(self, api: Api) -> None:
        body = api.presign("typed.pdf", "application/pdf")

        put = requests.put(
            body["presignedUrl"],
            data=b"%PDF",
            headers={"content-type": "application/octet-stream"},
            timeout=30,
        )

        assert put.status_code == 403
        assert put.headers["content-type"].startswith("application/xml")
        assert "<Code>SignatureDoesNotMatch</Code>" in put.text

    def test_put_with_forged_signature_rejected(self, api: Api) -> None:
        body = api.presign("forged.pdf")
        forged = re.sub(
            r"X-Amz-Signature=[0-9a-f]{4}", "X-Amz-Signature=0000", body["presignedUrl"]
        )

        put = requests.put(forged, data=b"x", timeout=30)

        assert put.status_code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in put.text

    def test_put_to_get_url_rejected(self, api: Api) -> None:
        body = api.presign("method.pdf")

        put = requests.put(body["url"], data=b"x", timeout=30)

        assert put.status_code == 403
        assert "SignatureDoesNotMatch" in put.text

    def test_put_over_size_limit_rejected(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(max_input_bytes=1000)
        api = Api(sandbox.base_url, sandbox.api_key)
        body = api.presign("big.bin")

        put = requests.put(body["presignedUrl"], data=b"x" * 1001, timeout=30)
        streamed = requests.put(
            body["presignedUrl"], data=chunks(b"x" * 1001, 100), timeout=30
        )

        assert put.status_code == 400
        assert "<Code>EntityTooLarge</Code>" in put.text
        assert "1000 bytes" in put.text
        assert streamed.status_code == 400
        assert "<Code>EntityTooLarge</Code>" in streamed.text


class TestGet:
    def test_get_before_put_is_not_found(self, api: Api) -> None:
        body = api.presign("missing.pdf")

        response = requests.get(body["url"], timeout=30)

        assert response.status_code == 404
        assert "<Code>NoSuchKey</Code>" in response.text

    def test_get_with_forged_signature_rejected(self, api: Api) -> None:
        url = api.upload(b"data", "f.bin")
        forged = url.replace("X-Amz-Expires=3600", "X-Amz-Expires=99999")

        response = requests.get(forged, timeout=30)

        assert response.status_code == 403
        assert "SignatureDoesNotMatch" in response.text

    def test_get_without_signature_rejected(self, api: Api) -> None:
        url = api.upload(b"data", "n.bin")

        response = requests.get(url.split("?")[0], timeout=30)

        assert response.status_code == 403
        assert "<Code>AccessDenied</Code>" in response.text

    @pytest.mark.parametrize(
        ("header", "body", "content_range"),
        [
            ("bytes=2-5", b"2345", "bytes 2-5/10"),
            ("bytes=7-", b"789", "bytes 7-9/10"),
            ("bytes=-3", b"789", "bytes 7-9/10"),
            ("bytes=8-100", b"89", "bytes 8-9/10"),
        ],
    )
    def test_range_request_partial(
        self, api: Api, header: str, body: bytes, content_range: str
    ) -> None:
        url = api.upload(b"0123456789", "r.bin")

        response = requests.get(url, headers={"range": header}, timeout=30)

        assert response.status_code == 206
        assert response.content == body
        assert response.headers["content-range"] == content_range
        assert response.headers["content-length"] == str(len(body))

    @pytest.mark.parametrize("header", ["bytes=0-1,4-5", "lines=1-2", "bytes=x-"])
    def test_unsupported_range_sends_whole_file(self, api: Api, header: str) -> None:
        url = api.upload(b"0123456789", "w.bin")

        response = requests.get(url, headers={"range": header}, timeout=30)

        assert response.status_code == 200
        assert response.content == b"0123456789"
        assert response.headers["accept-ranges"] == "bytes"

    def test_range_past_end_416(self, api: Api) -> None:
        url = api.upload(b"0123456789", "e.bin")

        response = requests.get(url, headers={"range": "bytes=10-"}, timeout=30)

        assert response.status_code == 416
        assert "<Code>InvalidRange</Code>" in response.text

    def test_head_reports_length(self, api: Api) -> None:
        url = api.upload(b"12345", "h.bin")

        response = requests.head(url, timeout=30)

        assert response.status_code == 200
        assert response.headers["content-length"] == "5"


class TestExpiry:
    def test_put_after_900_seconds_expired(self, pdfco_sandbox: Sandbox) -> None:
        api = Api(pdfco_sandbox.base_url, pdfco_sandbox.api_key)
        body = api.presign("late.pdf")
        pdfco_sandbox.clock.advance(901)

        put = requests.put(body["presignedUrl"], data=b"x", timeout=30)

        assert put.status_code == 403
        assert "<Code>AccessDenied</Code>" in put.text
        assert "Request has expired" in put.text

    def test_put_before_900_seconds_accepted(self, pdfco_sandbox: Sandbox) -> None:
        api = Api(pdfco_sandbox.base_url, pdfco_sandbox.api_key)
        body = api.presign("on-time.pdf")
        pdfco_sandbox.clock.advance(890)

        put = requests.put(body["presignedUrl"], data=b"x", timeout=30)

        assert put.status_code == 200

    def test_upload_get_after_3600_seconds_expired(
        self, pdfco_sandbox: Sandbox
    ) -> None:
        api = Api(pdfco_sandbox.base_url, pdfco_sandbox.api_key)
        url = api.upload(b"data", "old.bin")
        pdfco_sandbox.clock.advance(3500)
        assert requests.get(url, timeout=30).status_code == 200

        pdfco_sandbox.clock.advance(101)
        response = requests.get(url, timeout=30)

        assert response.status_code == 403
        assert "Request has expired" in response.text


class TestOtherUploads:
    def test_multipart_upload(self, api: Api, sandbox: Sandbox) -> None:
        data = pdf_bytes(1)
        before = sandbox.balance(KEY)

        response = api.post("/file/upload", files={"file": ("doc.pdf", data)})

        body = response.json()
        assert response.status_code == 200
        assert body["error"] is False
        assert body["name"] == "doc.pdf"
        assert body["credits"] == 11
        assert sandbox.balance(KEY) == before - 11
        assert download(body["url"]) == data

    def test_multipart_upload_name_field_wins(self, api: Api) -> None:
        response = api.post(
            "/file/upload",
            files={"file": ("doc.pdf", b"abc")},
            data={"name": "renamed.pdf"},
        )

        assert response.json()["name"] == "renamed.pdf"

    def test_multipart_upload_without_file_400(self, api: Api) -> None:
        response = api.post("/file/upload", data={"name": "x.pdf"})

        assert response.status_code == 400
        assert "Parameter 'file' is required" in response.json()["message"]

    @pytest.mark.parametrize("prefix", ["", "data:application/pdf;base64,"])
    def test_base64_upload(self, api: Api, sandbox: Sandbox, prefix: str) -> None:
        data = pdf_bytes(2)
        before = sandbox.balance(KEY)
        encoded = prefix + base64.b64encode(data).decode()

        body = api.post(
            "/file/upload/base64", json={"file": encoded, "name": "b.pdf"}
        ).json()

        assert body["credits"] == 21
        assert sandbox.balance(KEY) == before - 21
        assert download(body["url"]) == data

    def test_base64_upload_invalid_400(self, api: Api) -> None:
        response = api.post("/file/upload/base64", json={"file": "not base64!"})

        assert response.status_code == 400
        assert response.json()["message"] == "Parameter 'file' is not valid base64"

    def test_url_upload_copies_file(self, api: Api, sandbox: Sandbox) -> None:
        source = api.upload(b"payload", "source.bin")
        before = sandbox.balance(KEY)

        body = api.get("/file/upload/url", params={"url": source}).json()

        assert body["name"] == "source.bin"
        assert body["credits"] == 11
        assert sandbox.balance(KEY) == before - 11
        assert body["url"] != source
        assert download(body["url"]) == b"payload"

    def test_url_upload_off_machine_400(self, api: Api, sandbox: Sandbox) -> None:
        before = sandbox.balance(KEY)

        response = api.post(
            "/file/upload/url", json={"url": "https://example.com/a.pdf"}
        )

        assert response.status_code == 400
        assert sandbox.balance(KEY) == before

    def test_uploaded_files_merge(self, api: Api) -> None:
        first = api.post(
            "/file/upload", files={"file": ("a.pdf", pdf_bytes(1))}
        ).json()["url"]
        second = api.post(
            "/file/upload/base64",
            json={"file": base64.b64encode(pdf_bytes(2)).decode(), "name": "b.pdf"},
        ).json()["url"]

        assert api.merge([first, second]).json()["pageCount"] == 3


class TestFileRouteErrors:
    """File routes answer with S3 XML errors, never a plain-text 500."""

    @pytest.mark.parametrize("method", ["GET", "PUT"])
    def test_non_ascii_signature_rejected(self, api: Api, method: str) -> None:
        body = api.presign("accent.pdf")
        url = body["presignedUrl"] if method == "PUT" else body["url"]
        forged = re.sub(r"X-Amz-Signature=[0-9a-f]+", "X-Amz-Signature=%C3%A9", url)

        response = requests.request(method, forged, data=b"x", timeout=30)

        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/xml")
        assert "<Code>SignatureDoesNotMatch</Code>" in response.text

    def test_put_internal_failure_s3_500(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory()
        api = Api(sandbox.base_url, sandbox.api_key)
        body = api.presign("gone.pdf")
        shutil.rmtree(sandbox.data_dir / "objects")

        put = requests.put(body["presignedUrl"], data=b"x", timeout=30)

        assert put.status_code == 500
        assert put.headers["content-type"].startswith("application/xml")
        assert "<Code>InternalError</Code>" in put.text
        assert "Traceback" not in put.text
        assert "FileNotFoundError" not in put.text
