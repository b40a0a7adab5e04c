"""merge and merge2: inputs, order, conversions, request formats and response fields."""

from __future__ import annotations

import base64
import io
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import Destination

from pdfco_tasks.sandbox import Sandbox
from tests.sandbox.conftest import KEY
from tests.sandbox.helpers import Api, download, page_count, page_sizes
from tests.sandbox.inputs import (
    heic_bytes,
    image_bytes,
    pdf_bytes,
    zip_bytes,
)

JOB_ID = re.compile(r"[A-Z0-9]{32}--\d+-\d+")
VALID_TILL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


class SourceServer:
    """A loopback HTTP server that serves fixed files, some behind basic auth."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.credentials: tuple[str, str] | None = None
        files = self.files
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if outer.credentials is not None:
                    token = base64.b64encode(":".join(outer.credentials).encode())
                    if self.headers.get("authorization") != f"Basic {token.decode()}":
                        self.send_response(401)
                        self.end_headers()
                        return
                data = files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def source_server() -> Iterator[SourceServer]:
    server = SourceServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="module")
def pdfs(sandbox: Sandbox) -> dict[str, str]:
    """Upload PDFs of 1, 2 and 3 pages with distinct page widths once."""
    api = Api(sandbox.base_url, KEY)
    return {
        f"p{pages}": api.upload(pdf_bytes(pages, width=100 * pages), f"p{pages}.pdf")
        for pages in (1, 2, 3)
    }


class TestMergeSync:
    def test_merge_joins_pdfs_in_order(self, api: Api, pdfs: dict[str, str]) -> None:
        response = api.merge([pdfs["p2"], pdfs["p1"], pdfs["p3"]], endpoint="merge")

        assert response.status_code == 200
        body = response.json()
        merged = download(body["url"])
        widths = [width for width, _ in page_sizes(merged)]
        assert widths == [200, 200, 100, 300, 300, 300]

    def test_merge_response_fields(
        self, api: Api, sandbox: Sandbox, pdfs: dict[str, str]
    ) -> None:
        before = sandbox.balance(KEY)

        body = api.merge(
            [pdfs["p1"], pdfs["p2"]], endpoint="merge", name="joined.pdf"
        ).json()

        assert body["error"] is False
        assert body["status"] == 200
        assert body["pageCount"] == 3
        assert body["credits"] == 3
        assert body["remainingCredits"] == before - 3
        assert body["name"] == "joined.pdf"
        assert JOB_ID.fullmatch(body["jobId"])
        assert VALID_TILL.fullmatch(body["outputLinkValidTill"])
        assert isinstance(body["duration"], int)
        assert urlsplit(body["url"]).path == f"/{body['jobId']}/joined.pdf"

    def test_merge2_charges_two_credits_per_page(
        self, api: Api, sandbox: Sandbox, pdfs: dict[str, str]
    ) -> None:
        before = sandbox.balance(KEY)

        body = api.merge([pdfs["p1"], pdfs["p2"]]).json()

        assert body["pageCount"] == 3
        assert body["credits"] == 6
        assert sandbox.balance(KEY) == before - 6

    def test_result_is_pdf_content_type(self, api: Api, pdfs: dict[str, str]) -> None:
        body = api.merge([pdfs["p1"]]).json()

        response = requests.get(body["url"], timeout=30)

        assert response.headers["content-type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")

    def test_default_name_is_result_pdf(self, api: Api, pdfs: dict[str, str]) -> None:
        body = api.merge([pdfs["p1"]]).json()

        assert body["name"] == "result.pdf"

    def test_name_cannot_escape_data_dir(self, api: Api, pdfs: dict[str, str]) -> None:
        body = api.merge([pdfs["p1"]], name="../../../tmp/evil.pdf").json()

        assert body["name"] == "evil.pdf"
        assert urlsplit(body["url"]).path == f"/{body['jobId']}/evil.pdf"

    def test_cache_prefix_is_stripped(self, api: Api, pdfs: dict[str, str]) -> None:
        body = api.merge([f"cache:{pdfs['p2']}", pdfs["p1"]]).json()

        assert body["pageCount"] == 3

    def test_spaces_and_empty_items_ignored(
        self, api: Api, pdfs: dict[str, str]
    ) -> None:
        response = api.post(
            "/pdf/merge", json={"url": f" {pdfs['p1']} ,, {pdfs['p2']} ,"}
        )

        assert response.json()["pageCount"] == 3


class TestRequestFormats:
    @pytest.mark.parametrize(
        "send",
        [
            pytest.param(
                lambda api, url: api.post("/pdf/merge", json={"url": url}), id="json"
            ),
            pytest.param(
                lambda api, url: api.post("/pdf/merge", data={"url": url}), id="form"
            ),
            pytest.param(
                lambda api, url: api.post("/pdf/merge", files={"url": (None, url)}),
                id="multipart",
            ),
            pytest.param(
                lambda api, url: api.post("/pdf/merge", params={"url": url}),
                id="post-query",
            ),
            pytest.param(
                lambda api, url: api.get("/pdf/merge", params={"url": url}),
                id="get-query",
            ),
        ],
    )
    def test_body_formats_accepted(
        self,
        api: Api,
        pdfs: dict[str, str],
        send: Callable[[Api, str], requests.Response],
    ) -> None:
        response = send(api, f"{pdfs['p1']},{pdfs['p2']}")

        assert response.status_code == 200, response.text
        assert response.json()["pageCount"] == 3

    @pytest.mark.parametrize("value", ["true", "True", "TRUE", "1"])
    def test_async_booleans_case_insensitive(
        self, api: Api, pdfs: dict[str, str], value: str
    ) -> None:
        response = api.post("/pdf/merge2", data={"url": pdfs["p1"], "async": value})

        assert response.json()["pageCount"] == 0
        assert api.wait(response.json()["jobId"])["status"] == "success"

    @pytest.mark.parametrize("value", ["false", "False", "0"])
    def test_async_false_runs_sync(
        self, api: Api, pdfs: dict[str, str], value: str
    ) -> None:
        response = api.post("/pdf/merge2", data={"url": pdfs["p1"], "async": value})

        assert response.json()["pageCount"] == 1

    def test_json_boolean_accepted(self, api: Api, pdfs: dict[str, str]) -> None:
        response = api.post("/pdf/merge2", json={"url": pdfs["p1"], "async": True})

        assert api.wait(response.json()["jobId"])["pageCount"] == 1

    def test_key_in_query_string_accepted(self, api: Api, pdfs: dict[str, str]) -> None:
        response = requests.post(
            api.base_url + "/pdf/merge",
            params={"x-api-key": KEY},
            json={"url": pdfs["p1"]},
            timeout=30,
        )

        assert response.status_code == 200
        assert response.json()["pageCount"] == 1

    def test_http_credentials_accepted(self, api: Api, pdfs: dict[str, str]) -> None:
        response = api.merge([pdfs["p1"]], httpusername="u", httppassword="p")

        assert response.status_code == 200


class TestBookmarks:
    def test_generate_bookmarks_one_per_input(
        self, api: Api, sandbox: Sandbox, pdfs: dict[str, str]
    ) -> None:
        body = api.merge(
            [pdfs["p2"], pdfs["p3"]], profiles='{"GenerateBookmarks": true}'
        ).json()

        reader = PdfReader(io.BytesIO(download(body["url"])))
        items = [item for item in reader.outline if isinstance(item, Destination)]
        titles = [item.title for item in items]
        starts = [reader.get_destination_page_number(item) for item in items]
        assert titles == ["p2.pdf", "p3.pdf"]
        assert starts == [0, 2]

    def test_profiles_as_json_object(self, api: Api, pdfs: dict[str, str]) -> None:
        body = api.merge([pdfs["p1"]], profiles={"GenerateBookmarks": True}).json()

        reader = PdfReader(io.BytesIO(download(body["url"])))
        items = [item for item in reader.outline if isinstance(item, Destination)]
        assert [item.title for item in items] == ["p1.pdf"]

    def test_no_bookmarks_by_default(self, api: Api, pdfs: dict[str, str]) -> None:
        body = api.merge([pdfs["p1"], pdfs["p2"]]).json()

        reader = PdfReader(io.BytesIO(download(body["url"])))
        assert reader.outline == []


class TestImages:
    @pytest.mark.parametrize(
        ("image_format", "name"),
        [
            ("PNG", "a.png"),
            ("JPEG", "a.jpg"),
            ("JPEG", "a.jpeg"),
            ("BMP", "a.bmp"),
            ("GIF", "a.gif"),
            ("TIFF", "a.tiff"),
        ],
    )
    def test_image_becomes_one_page(
        self, api: Api, image_format: str, name: str
    ) -> None:
        url = api.upload(image_bytes(image_format), name)

        body = api.merge([url]).json()

        assert body["pageCount"] == 1
        assert page_count(download(body["url"])) == 1

    def test_animated_gif_one_page_per_frame(self, api: Api) -> None:
        url = api.upload(image_bytes("GIF", frames=3), "anim.gif")

        body = api.merge([url]).json()

        assert body["pageCount"] == 3
        assert page_count(download(body["url"])) == 3

    def test_multipage_tiff_one_page_per_frame(self, api: Api) -> None:
        url = api.upload(image_bytes("TIFF", frames=4), "scan.tif")

        body = api.merge([url]).json()

        assert page_count(download(body["url"])) == 4

    def test_exif_orientation_applied(self, api: Api) -> None:
        # Orientation 6 means "rotate 90 degrees clockwise to display".
        url = api.upload(image_bytes("JPEG", size=(60, 20), orientation=6), "r.jpg")

        body = api.merge([url]).json()

        width, height = page_sizes(download(body["url"]))[0]
        assert width < height

    def test_transparent_png_accepted(self, api: Api) -> None:
        buffer = io.BytesIO()
        Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(buffer, "PNG")
        url = api.upload(buffer.getvalue(), "clear.png")

        body = api.merge([url]).json()

        assert body["pageCount"] == 1

    def test_images_and_pdfs_mixed_in_order(
        self, api: Api, pdfs: dict[str, str]
    ) -> None:
        image = api.upload(image_bytes("PNG", size=(50, 50)), "square.png")

        body = api.merge([pdfs["p1"], image, pdfs["p2"]]).json()

        widths = [width for width, _ in page_sizes(download(body["url"]))]
        assert body["pageCount"] == 4
        assert widths[0] == 100
        assert widths[2:] == [200, 200]

    @pytest.mark.parametrize(
        ("data", "name", "kind"),
        [
            pytest.param(heic_bytes(), "photo.heic", "HEIC", id="heic"),
            pytest.param(image_bytes("WEBP"), "photo.webp", "WEBP", id="webp"),
            pytest.param(image_bytes("WEBP"), "photo.png", "WEBP", id="webp-renamed"),
        ],
    )
    def test_heic_and_webp_rejected_415(
        self, api: Api, data: bytes, name: str, kind: str
    ) -> None:
        url = api.upload(data, name)

        response = api.merge([url])

        assert response.status_code == 415
        assert response.json()["status"] == 415
        assert response.json()["error"] is True
        assert f"{kind} images are not supported" in response.json()["message"]
        assert name in response.json()["message"]


class TestZip:
    def test_zip_members_merged_in_name_order(self, api: Api) -> None:
        archive = zip_bytes(
            {
                "b/second.pdf": pdf_bytes(2, width=200),
                "a-first.pdf": pdf_bytes(1, width=100),
                "c.png": image_bytes("PNG", size=(30, 30)),
                "a-dir/": b"",
                "__MACOSX/._a-first.pdf": b"junk",
            }
        )
        url = api.upload(archive, "bundle.zip")

        body = api.merge([url]).json()

        widths = [width for width, _ in page_sizes(download(body["url"]))]
        assert body["pageCount"] == 4
        assert widths[:3] == [100, 200, 200]

    @pytest.mark.parametrize(
        "member", ["../evil.pdf", "/abs.pdf", "a/../../evil.pdf", "C:/x.pdf"]
    )
    def test_unsafe_member_name_rejected(self, api: Api, member: str) -> None:
        url = api.upload(zip_bytes({member: pdf_bytes(1)}), "unsafe.zip")

        response = api.merge([url])

        assert response.status_code == 442
        assert "unsafe member name" in response.json()["message"]
        assert "unsafe.zip" in response.json()["message"]

    def test_zip_in_zip_rejected(self, api: Api) -> None:
        inner = zip_bytes({"a.pdf": pdf_bytes(1)})
        url = api.upload(zip_bytes({"inner.zip": inner}), "outer.zip")

        response = api.merge([url])

        assert response.status_code == 415
        assert "outer.zip/inner.zip" in response.json()["message"]

    def test_empty_zip_rejected(self, api: Api) -> None:
        url = api.upload(zip_bytes({"dir/": b""}), "empty.zip")

        response = api.merge([url])

        assert response.status_code == 442
        assert "without files" in response.json()["message"]

    def test_password_protected_member_rejected(self, api: Api) -> None:
        url = api.upload(zip_bytes({"a.pdf": pdf_bytes(1)}, True), "locked.zip")

        response = api.merge([url])

        assert response.status_code == 441
        assert "locked.zip" in response.json()["message"]

    def test_damaged_member_named(self, api: Api) -> None:
        url = api.upload(zip_bytes({"bad.pdf": b"%PDF-1.4 garbage"}), "mixed.zip")

        response = api.merge([url])

        assert response.status_code == 442
        assert "mixed.zip/bad.pdf" in response.json()["message"]


class TestSources:
    def test_loopback_url_fetched(self, api: Api, source_server: SourceServer) -> None:
        source_server.files["/remote.pdf"] = pdf_bytes(2)

        body = api.merge([source_server.url("/remote.pdf", "localhost")]).json()

        assert body["pageCount"] == 2

    def test_loopback_url_with_basic_auth(
        self, api: Api, source_server: SourceServer
    ) -> None:
        source_server.files["/private.pdf"] = pdf_bytes(1)
        source_server.credentials = ("user", "secret")
        try:
            denied = api.merge([source_server.url("/private.pdf")])
            allowed = api.merge(
                [source_server.url("/private.pdf")],
                httpusername="user",
                httppassword="secret",
            )
        finally:
            source_server.credentials = None

        assert denied.status_code == 400
        assert "returned HTTP 401" in denied.json()["message"]
        assert allowed.json()["pageCount"] == 1

    def test_unreachable_loopback_url_400(
        self, api: Api, source_server: SourceServer
    ) -> None:
        response = api.merge([source_server.url("/missing.pdf")])

        assert response.status_code == 400
        assert "missing.pdf" in response.json()["message"]
        assert "HTTP 404" in response.json()["message"]

    @pytest.mark.parametrize(
        "url",
        [
            "https://example.com/a.pdf",
            "http://10.0.0.1/a.pdf",
            "http://169.254.169.254/latest/meta-data",
        ],
    )
    def test_off_machine_url_rejected(self, api: Api, url: str) -> None:
        response = api.merge([url])

        assert response.status_code == 400
        assert (
            "only reads its own file URLs and loopback URLs"
            in (response.json()["message"])
        )

    def test_ipv6_loopback_accepted_as_host(self, api: Api) -> None:
        response = api.merge(["http://[::1]:9/none.pdf"])

        assert response.status_code == 400
        assert "only reads" not in response.json()["message"]

    @pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.pdf", "file:///etc/passwd"])
    def test_other_schemes_rejected(self, api: Api, url: str) -> None:
        response = api.merge([url])

        assert response.status_code == 400
        assert "only http and https" in response.json()["message"]

    def test_merge_rejects_non_pdf_442(self, api: Api) -> None:
        url = api.upload(image_bytes("PNG"), "pic.png")

        response = api.merge([url], endpoint="merge")

        assert response.status_code == 442
        assert "pic.png is not a PDF" in response.json()["message"]

    def test_total_size_over_limit_400(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(max_input_bytes=3000)
        api = Api(sandbox.base_url, sandbox.api_key)
        first = api.upload(pdf_bytes(1) + b"%" * 1500, "a.pdf")
        second = api.upload(pdf_bytes(1) + b"%" * 1500, "b.pdf")

        response = api.merge([first, second])

        assert response.status_code == 400
        assert "exceeds the 3000 bytes limit" in response.json()["message"]
