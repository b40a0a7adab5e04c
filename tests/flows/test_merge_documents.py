"""The merge_documents flow on the real Prefect engine against the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pypdf import PdfReader

from flows.merge_documents import merge_documents
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import PreflightError, ValidationError
from tests.factories import (
    make_docx,
    make_encrypted_pdf,
    make_image,
    make_pdf,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    from pdfco_tasks.sandbox import Sandbox

    with Sandbox(api_keys=("flow-key",)) as server:
        yield server


@pytest.fixture
def credentials(sandbox: Any, state_dir: Path) -> PdfcoCredentials:
    sandbox.set_faults("")
    return PdfcoCredentials(api_key=SecretStr("flow-key"), base_url=sandbox.base_url)


def merge_submissions(sandbox: Any) -> int:
    return int(sandbox.counters()["merge_submissions_total"])


class TestMergeDocuments:
    def test_pdfs_merge_with_spans(
        self, tmp_path: Path, credentials: PdfcoCredentials
    ) -> None:
        first = make_pdf(tmp_path, "first.pdf", 3)
        second = make_pdf(tmp_path, "second.pdf", 2)
        output = tmp_path / "out" / "merged.pdf"

        result = merge_documents(
            [str(first), str(second)], str(output), credentials=credentials
        )

        assert result["output"] == str(output)
        assert result["page_count"] == 5
        assert len(PdfReader(output).pages) == 5
        assert [(s["first_page"], s["last_page"]) for s in result["spans"]] == [
            (1, 3),
            (4, 5),
        ]
        assert result["job_id"]
        assert result["credits_used"] > 0
        assert not list(output.parent.glob(".*"))

    @pytest.mark.soffice
    def test_mixed_pdf_docx_image(
        self, tmp_path: Path, credentials: PdfcoCredentials
    ) -> None:
        pdf = make_pdf(tmp_path, "report.pdf", 2)
        docx = make_docx(tmp_path, "letter.docx", ["Dear reader,", "Regards."])
        image = make_image(tmp_path, "frames.gif", frames=3)
        output = tmp_path / "mixed.pdf"

        result = merge_documents(
            [str(pdf), str(docx), str(image)], str(output), credentials=credentials
        )

        assert result["page_count"] == 2 + 1 + 3
        assert len(PdfReader(output).pages) == 6
        spans = [(s["first_page"], s["last_page"]) for s in result["spans"]]
        assert spans == [(1, 2), (3, 3), (4, 6)]

    def test_existing_output_kept_without_overwrite(
        self, tmp_path: Path, credentials: PdfcoCredentials, sandbox: Any
    ) -> None:
        source = make_pdf(tmp_path, "a.pdf", 1)
        output = tmp_path / "merged.pdf"
        output.write_bytes(b"keep me")
        before = merge_submissions(sandbox)

        with pytest.raises(
            PreflightError, match="already exists; allow overwriting it"
        ):
            merge_documents([str(source)], str(output), credentials=credentials)

        assert output.read_bytes() == b"keep me"
        assert merge_submissions(sandbox) == before


class TestPreflight:
    """Each bad input fails the run before any credit is spent."""

    @pytest.mark.parametrize(
        ("make_bad", "reason"),
        [
            pytest.param(lambda d: d / "missing.pdf", "not found", id="missing"),
            pytest.param(lambda d: _write(d / "empty.pdf", b""), "empty", id="empty"),
            pytest.param(
                lambda d: _write(d / "photo.heic", b"\x00\x00\x00\x18ftypheic"),
                "HEIC",
                id="heic",
            ),
            pytest.param(
                lambda d: _write(d / "photo.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 "),
                "WEBP",
                id="webp",
            ),
            pytest.param(
                lambda d: make_encrypted_pdf(
                    d, "locked.pdf", 1, user_password="u", owner_password="o"
                ),
                "password",
                id="user-password",
            ),
            pytest.param(
                lambda d: _write(d / "broken.pdf", b"this is not a pdf at all"),
                "damaged|not a PDF",
                id="damaged-pdf",
            ),
            pytest.param(
                lambda d: "https://example.com/a,b.pdf", "comma", id="comma-url"
            ),
        ],
    )
    def test_bad_input_named_before_spending(
        self,
        tmp_path: Path,
        credentials: PdfcoCredentials,
        sandbox: Any,
        make_bad: Callable[[Path], Any],
        reason: str,
    ) -> None:
        good = make_pdf(tmp_path, "good.pdf", 1)
        bad = str(make_bad(tmp_path))
        before = sandbox.counters()
        output = tmp_path / "merged.pdf"

        with pytest.raises(PreflightError, match=reason) as caught:
            merge_documents([str(good), bad], str(output), credentials=credentials)

        assert [source for source, _ in caught.value.problems] == [bad]
        assert Path(bad).name in caught.value.message
        after = sandbox.counters()
        assert after["merge_submissions_total"] == before["merge_submissions_total"]
        assert after["credits_charged"] == before["credits_charged"]
        assert not output.exists()

    def test_every_bad_input_listed_once(
        self, tmp_path: Path, credentials: PdfcoCredentials
    ) -> None:
        missing = tmp_path / "missing.pdf"
        empty = _write(tmp_path / "empty.docx", b"")
        webp = _write(tmp_path / "img.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ")

        with pytest.raises(PreflightError) as caught:
            merge_documents(
                [str(missing), str(empty), str(webp)],
                str(tmp_path / "out.pdf"),
                credentials=credentials,
            )

        assert [source for source, _ in caught.value.problems] == [
            str(missing),
            str(empty),
            str(webp),
        ]
        assert caught.value.message.startswith("3 of 3 inputs cannot be merged")

    def test_owner_password_pdf_is_accepted(
        self, tmp_path: Path, credentials: PdfcoCredentials
    ) -> None:
        owner_only = make_encrypted_pdf(
            tmp_path, "owner.pdf", 2, user_password="", owner_password="secret"
        )
        plain = make_pdf(tmp_path, "plain.pdf", 1)
        output = tmp_path / "merged.pdf"

        result = merge_documents(
            [str(owner_only), str(plain)], str(output), credentials=credentials
        )

        assert result["page_count"] == 3


class TestValidationFailure:
    def test_dropped_page_never_reaches_output(
        self, tmp_path: Path, credentials: PdfcoCredentials, sandbox: Any
    ) -> None:
        sandbox.set_faults("drop-page:1.0")
        first = make_pdf(tmp_path, "first.pdf", 3)
        second = make_pdf(tmp_path, "second.pdf", 2)
        output = tmp_path / "merged.pdf"

        with pytest.raises(ValidationError) as caught:
            merge_documents(
                [str(first), str(second)], str(output), credentials=credentials
            )

        message = caught.value.message
        assert "first.pdf: 3 pages" in message
        assert "second.pdf: 2 pages" in message
        assert "4" in message
        assert not output.exists()
        kept = Path(str(caught.value.kept_path))
        assert kept.exists()
        assert "FAILED-VALIDATION" in kept.name
        assert len(PdfReader(kept).pages) == 4

    def test_rerun_after_validation_failure_submits_again(
        self, tmp_path: Path, credentials: PdfcoCredentials, sandbox: Any
    ) -> None:
        sandbox.set_faults("drop-page:1.0")
        source = make_pdf(tmp_path, "a.pdf", 2)
        output = tmp_path / "merged.pdf"
        with pytest.raises(ValidationError):
            merge_documents([str(source)], str(output), credentials=credentials)
        before = merge_submissions(sandbox)

        sandbox.set_faults("")
        result = merge_documents([str(source)], str(output), credentials=credentials)

        assert result["page_count"] == 2
        assert result["resumed"] is False
        assert merge_submissions(sandbox) == before + 1


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class TestChunkedMerge:
    def test_chunks_keep_order_and_spans(
        self, tmp_path: Path, credentials: PdfcoCredentials, sandbox: Any
    ) -> None:
        pages = [2, 1, 3, 1, 2]
        sources = [
            str(make_pdf(tmp_path, f"part{index}.pdf", count))
            for index, count in enumerate(pages)
        ]
        sources.insert(2, str(make_image(tmp_path, "frames.tif", frames=2)))
        output = tmp_path / "chunked.pdf"
        before = merge_submissions(sandbox)

        result = merge_documents(
            sources, str(output), credentials=credentials, chunk_size=2
        )

        assert result["page_count"] == sum(pages) + 2
        assert len(PdfReader(output).pages) == sum(pages) + 2
        spans = [(s["first_page"], s["last_page"]) for s in result["spans"]]
        assert spans == [(1, 2), (3, 3), (4, 5), (6, 8), (9, 9), (10, 11)]
        assert [s["source"] for s in result["spans"]] == sources
        assert merge_submissions(sandbox) == before + 3
        assert len(result["job_id"].split(",")) == 3
        assert (
            sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
        )


def test_leftovers_of_killed_run_removed(
    tmp_path: Path, credentials: PdfcoCredentials
) -> None:
    source = make_pdf(tmp_path, "a.pdf", 2)
    output = tmp_path / "merged.pdf"
    leftovers = [
        tmp_path / ".merged.pdf.download",
        tmp_path / "..merged.pdf.download.abc123.part",
        tmp_path / ".merged.part-002.pdf",
        tmp_path / "..merged.part-002.pdf.download.xyz.part",
    ]
    for path in leftovers:
        path.write_bytes(b"partial")
    unrelated = tmp_path / ".notes.txt"
    unrelated.write_text("keep")

    merge_documents([str(source)], str(output), credentials=credentials)

    assert [path for path in leftovers if path.exists()] == []
    assert unrelated.read_text() == "keep"
    assert len(PdfReader(output).pages) == 2


def test_url_inputs_never_resumed(
    tmp_path: Path, credentials: PdfcoCredentials, sandbox: Any
) -> None:
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    web = tmp_path / "web"
    web.mkdir()
    make_pdf(web, "doc.pdf", 2)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(web))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/doc.pdf"
    try:
        before = merge_submissions(sandbox)
        # The same output name in another folder gives the same job store key.
        first = merge_documents(
            [url], str(tmp_path / "a" / "merged.pdf"), credentials=credentials
        )
        make_pdf(web, "doc.pdf", 5)
        second = merge_documents(
            [url], str(tmp_path / "b" / "merged.pdf"), credentials=credentials
        )
    finally:
        server.shutdown()

    assert first["page_count"] == 2
    assert second["resumed"] is False
    assert second["page_count"] == 5
    assert len(PdfReader(tmp_path / "b" / "merged.pdf").pages) == 5
    assert merge_submissions(sandbox) == before + 2
