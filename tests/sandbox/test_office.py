"""Office inputs of merge2, converted by LibreOffice."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pdfco_tasks.sandbox import Sandbox
from tests.sandbox.conftest import KEY
from tests.sandbox.helpers import Api, download, page_count
from tests.sandbox.inputs import docx_bytes, image_bytes, pdf_bytes, zip_bytes

pytestmark = [
    pytest.mark.soffice,
    pytest.mark.skipif(
        shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed"
    ),
]

RTF = b"{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times;}} Hello from RTF\\par}"
CSV = b"name,pages\nfirst,1\nsecond,2\n"


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, bytes]]:
    """Write XLSX, XLS and DOC samples with LibreOffice from a CSV and a text file."""
    directory = tmp_path_factory.mktemp("office")
    (directory / "sheet.csv").write_bytes(CSV)
    (directory / "letter.txt").write_bytes(b"A short letter.\n")
    profile = (directory / "profile").as_uri()
    jobs = [("sheet.csv", "xlsx"), ("sheet.csv", "xls"), ("letter.txt", "doc")]
    for source, target in jobs:
        subprocess.run(
            [
                "soffice",
                f"-env:UserInstallation={profile}",
                "--headless",
                "--convert-to",
                target,
                "--outdir",
                str(directory),
                source,
            ],
            cwd=directory,
            capture_output=True,
            timeout=180,
            check=True,
        )
    yield {
        "xlsx": (directory / "sheet.xlsx").read_bytes(),
        "xls": (directory / "sheet.xls").read_bytes(),
        "doc": (directory / "letter.doc").read_bytes(),
    }


class TestConversions:
    def test_docx_pages_kept(self, api: Api) -> None:
        url = api.upload(docx_bytes(3), "three.docx")

        body = api.merge([url]).json()

        assert body["pageCount"] == 3
        assert page_count(download(body["url"])) == 3

    @pytest.mark.parametrize(
        ("name", "data"),
        [("note.txt", b"plain text\nsecond line\n"), ("memo.rtf", RTF)],
    )
    def test_text_formats_convert(self, api: Api, name: str, data: bytes) -> None:
        url = api.upload(data, name)

        body = api.merge([url]).json()

        assert body["pageCount"] == 1

    @pytest.mark.parametrize("kind", ["xlsx", "xls", "doc"])
    def test_formats_written_by_libreoffice(
        self, api: Api, converted: dict[str, bytes], kind: str
    ) -> None:
        url = api.upload(converted[kind], f"sample.{kind}")

        response = api.merge([url])

        assert response.status_code == 200, response.text
        assert response.json()["pageCount"] >= 1

    def test_mixed_inputs_async_with_bookmarks(self, api: Api) -> None:
        urls = [
            api.upload(pdf_bytes(2), "intro.pdf"),
            api.upload(docx_bytes(2), "body.docx"),
            api.upload(image_bytes("PNG"), "figure.png"),
        ]

        final = api.merge_async(urls, profiles='{"GenerateBookmarks": true}')

        assert final["status"] == "success"
        assert final["pageCount"] == 5
        assert page_count(download(final["url"])) == 5

    def test_docx_inside_zip(self, api: Api) -> None:
        archive = zip_bytes({"1.docx": docx_bytes(2), "2.pdf": pdf_bytes(1)})
        url = api.upload(archive, "bundle.zip")

        body = api.merge([url]).json()

        assert body["pageCount"] == 3

    def test_merge_endpoint_rejects_docx(self, api: Api) -> None:
        url = api.upload(docx_bytes(1), "a.docx")

        response = api.merge([url], endpoint="merge")

        assert response.status_code == 442
        assert "a.docx is not a PDF" in response.json()["message"]


class TestConversionFailures:
    def test_damaged_docx_442(self, api: Api) -> None:
        damaged = zip_bytes({"word/document.xml": b"<not-closed", "junk": b"x"})
        url = api.upload(damaged, "broken.docx")

        response = api.merge([url])

        assert response.status_code == 442
        assert "broken.docx" in response.json()["message"]

    def test_damaged_doc_442(self, api: Api) -> None:
        ole_header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        url = api.upload(ole_header + b"\x00garbage" * 200, "broken.doc")

        response = api.merge([url])

        assert response.status_code == 442
        assert "broken.doc" in response.json()["message"]

    def test_conversion_timeout_445(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(soffice_timeout=0.01)
        api = Api(sandbox.base_url, sandbox.api_key)
        url = api.upload(docx_bytes(1), "slow.docx")

        response = api.merge([url])

        assert response.status_code == 445
        assert "converting slow.docx took longer than" in response.json()["message"]


def test_concurrent_conversions(sandbox: Sandbox) -> None:
    api = Api(sandbox.base_url, KEY)
    urls = [api.upload(docx_bytes(index + 1), f"d{index}.docx") for index in range(3)]

    with ThreadPoolExecutor(3) as pool:
        bodies = list(pool.map(lambda url: api.merge([url]).json(), urls))

    assert [body["pageCount"] for body in bodies] == [1, 2, 3]


def test_profiles_are_per_worker(sandbox: Sandbox) -> None:
    profiles = sorted(Path(sandbox.data_dir, "soffice-profiles").iterdir())

    assert len(profiles) >= 1
    assert all(path.name.startswith("profile-") for path in profiles)
