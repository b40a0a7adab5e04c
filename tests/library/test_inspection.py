"""Tests of pre-flight inspection: kinds, page counts and every input problem."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from pdfco_tasks.exceptions import PdfcoError, PreflightError
from pdfco_tasks.inspection import (
    MAX_TOTAL_BYTES,
    SUPPORTED_EXTENSIONS,
    count_pdf_pages,
    file_sha256,
    inspect_source,
    inspect_sources,
)
from tests.factories import (
    make_docx,
    make_encrypted_pdf,
    make_image,
    make_nested_pdf,
    make_pdf,
    make_pdf_with_cycle,
    make_pdf_with_wrong_count,
    make_text,
    make_zip,
    write_raw_pdf,
)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def problem_of(source: str | os.PathLike[str]) -> str:
    """Return the one reason `inspect_source` gives for rejecting `source`."""
    with pytest.raises(PreflightError) as caught:
        inspect_source(source)
    assert len(caught.value.problems) == 1
    reported_source, reason = caught.value.problems[0]
    assert reported_source == os.fspath(source)
    return reason


class TestUrls:
    def test_https_url_passes_through(self) -> None:
        spec = inspect_source("https://example.com/files/report.pdf?sig=abc")

        assert spec.kind == "url"
        assert spec.min_pages == 1
        assert spec.exact is False
        assert spec.size == 0
        assert spec.sha256 == ""
        assert spec.is_url

    def test_http_url_passes_through(self) -> None:
        assert inspect_source("http://127.0.0.1:8080/a.docx").kind == "url"

    def test_url_with_comma_rejected(self) -> None:
        reason = problem_of("https://example.com/a,b.pdf")

        assert "contains a comma" in reason
        assert "%2C" in reason

    def test_signature_left_out_of_message(self) -> None:
        url = "https://bucket.example.com/a,b.pdf?X-Amz-Signature=secret"

        with pytest.raises(PreflightError) as caught:
            inspect_sources([url])

        assert "secret" not in caught.value.message
        assert caught.value.message.splitlines()[1].startswith(
            "  https://bucket.example.com/a,b.pdf: URL contains a comma"
        )
        assert caught.value.problems[0][0] == url

    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("ftp://example.com/a.pdf", id="ftp"),
            pytest.param("file:///tmp/a.pdf", id="file"),
        ],
    )
    def test_other_scheme_rejected(self, url: str) -> None:
        reason = problem_of(url)

        assert reason.startswith("unsupported URL scheme")
        assert "http(s)" in reason

    def test_url_without_host_rejected(self) -> None:
        assert problem_of("https:///a.pdf") == "URL has no host name"

    def test_existing_file_with_colon_is_a_path(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        make_text(tmp_path, "notes:2024.txt")
        monkeypatch.chdir(tmp_path)

        spec = inspect_source("notes:2024.txt")

        assert spec.kind == "txt"


class TestFileProblems:
    def test_missing_file(self, tmp_path: Path) -> None:
        assert problem_of(tmp_path / "absent.pdf") == "file not found; check the path"

    def test_directory(self, tmp_path: Path) -> None:
        directory = tmp_path / "folder.pdf"
        directory.mkdir()

        assert problem_of(directory).startswith("is a directory, not a file")

    def test_fifo_is_not_opened(self, tmp_path: Path) -> None:
        fifo = tmp_path / "pipe.pdf"
        os.mkfifo(fifo)

        assert problem_of(fifo).startswith("is not a regular file")

    def test_empty_file(self, tmp_path: Path) -> None:
        empty = tmp_path / "empty.pdf"
        empty.touch()

        assert problem_of(empty) == "is empty (0 bytes)"

    @pytest.mark.skipif(
        os.geteuid() == 0,
        reason="root reads every file whatever its permission bits",
    )
    def test_unreadable_file(self, tmp_path: Path) -> None:
        path = make_pdf(tmp_path, "locked.pdf", 1)
        path.chmod(0)

        assert problem_of(path).startswith("cannot be read: permission denied")

    @pytest.mark.parametrize("name", ["photo.heic", "photo.HEIF"])
    def test_heic_rejected(self, tmp_path: Path, name: str) -> None:
        path = tmp_path / name
        path.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 32)

        assert problem_of(path) == (
            "PDF.co merge2 does not accept HEIC/HEIF images; convert to PNG or "
            "JPEG first"
        )

    def test_webp_rejected(self, tmp_path: Path) -> None:
        path = tmp_path / "photo.webp"
        Image.new("RGB", (8, 8), "red").save(path, format="WEBP")

        assert problem_of(path) == (
            "PDF.co merge2 does not accept WEBP images; convert to PNG or JPEG first"
        )

    def test_webp_renamed_to_png_rejected(self, tmp_path: Path) -> None:
        path = tmp_path / "photo.png"
        Image.new("RGB", (8, 8), "red").save(path, format="WEBP")

        reason = problem_of(path)

        assert reason.startswith("is a WEBP image despite its .png extension")
        assert "does not accept WEBP" in reason

    def test_unknown_extension_rejected(self, tmp_path: Path) -> None:
        path = make_text(tmp_path, "data.csv", "a,b\n1,2\n")

        reason = problem_of(path)

        assert reason.startswith("unsupported file type (.csv); merge2 accepts pdf,")

    def test_missing_extension_rejected(self, tmp_path: Path) -> None:
        path = make_text(tmp_path, "README")

        assert problem_of(path).startswith("unsupported file type (no extension)")


class TestPdf:
    def test_pdf_counted_exactly(self, tmp_path: Path) -> None:
        path = make_pdf(tmp_path, "a.pdf", 3)

        spec = inspect_source(path)

        assert spec.kind == "pdf"
        assert spec.min_pages == 3
        assert spec.exact is True
        assert spec.size == path.stat().st_size
        assert spec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert spec.content_type == "application/pdf"
        assert spec.notes == ()
        assert spec.source == str(path)

    def test_nested_page_tree_counted(self, tmp_path: Path) -> None:
        path = make_nested_pdf(tmp_path, "nested.pdf", 23, fan_out=2)

        count = count_pdf_pages(path)

        assert count.pages == 23
        assert count.stored_count == 23
        assert count.notes == ()

    def test_owner_password_only_accepted(self, tmp_path: Path) -> None:
        path = make_encrypted_pdf(
            tmp_path, "owner.pdf", 4, user_password="", owner_password="secret"
        )

        spec = inspect_source(path)

        assert spec.min_pages == 4
        assert spec.exact is True

    def test_user_password_rejected(self, tmp_path: Path) -> None:
        path = make_encrypted_pdf(
            tmp_path, "locked.pdf", 2, user_password="open", owner_password="owner"
        )

        assert problem_of(path) == (
            "needs a password to open; remove the password first (PDF.co cannot "
            "merge it)"
        )

    def test_missing_header_is_damage(self, tmp_path: Path) -> None:
        path = tmp_path / "fake.pdf"
        path.write_bytes(b"<html><body>Not found</body></html>")

        assert problem_of(path) == (
            "is damaged or not a PDF: no %PDF- header in its first 1024 bytes"
        )

    def test_header_after_junk_accepted(self, tmp_path: Path) -> None:
        original = make_pdf(tmp_path, "original.pdf", 2)
        path = tmp_path / "prefixed.pdf"
        path.write_bytes(b"\r\n" * 8 + original.read_bytes())

        spec = inspect_source(path)

        assert spec.min_pages == 2

    def test_unparseable_pdf_names_pypdf_error(self, tmp_path: Path) -> None:
        path = tmp_path / "broken.pdf"
        path.write_bytes(b"%PDF-1.7\n" + b"garbage " * 50 + b"\n%%EOF\n")

        reason = problem_of(path)

        assert reason.startswith("is damaged: pypdf cannot read it (PdfReadError:")
        assert reason.endswith("repair or re-export the file")

    def test_cyclic_page_tree_rejected(self, tmp_path: Path) -> None:
        path = make_pdf_with_cycle(tmp_path, "cycle.pdf")

        assert problem_of(path) == (
            "page tree is damaged: object 2 0 is listed inside itself"
        )

    def test_pdf_without_pages_rejected(self, tmp_path: Path) -> None:
        path = write_raw_pdf(
            tmp_path / "blank.pdf",
            [
                "<< /Type /Catalog /Pages 2 0 R >>",
                "<< /Type /Pages /Kids [] /Count 0 >>",
            ],
        )

        assert problem_of(path) == "contains no pages"

    def test_count_disagreement_noted_and_logged(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = make_pdf_with_wrong_count(tmp_path, "liar.pdf", 3, stored_count=7)

        with caplog.at_level(logging.WARNING, logger="pdfco_tasks"):
            spec = inspect_source(path)

        note = "the page tree stores /Count 7, but walking it finds 3 pages; using 3"
        assert spec.min_pages == 3
        assert spec.notes == (note,)
        assert f"{path}: {note}" in caplog.messages

    def test_untyped_and_foreign_kids_follow_pypdf(self, tmp_path: Path) -> None:
        path = write_raw_pdf(
            tmp_path / "odd.pdf",
            [
                "<< /Type /Catalog /Pages 2 0 R >>",
                "<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R << /MediaBox [0 0 9 9] >>]"
                " /Count 3 /MediaBox [0 0 200 300] >>",
                "<< /Type /Page /Parent 2 0 R >>",
                "<< /Parent 2 0 R /Contents 6 0 R >>",
                "<< /Type /Annot /Subtype /Text >>",
                "<< /Length 0 >>\nstream\n\nendstream",
            ],
        )

        count = count_pdf_pages(path)

        assert count.pages == 3
        assert count.notes == ("page tree: skipped 1 entries of /Type /Annot",)

    def test_count_pdf_pages_raises_preflight_error(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.pdf"
        path.touch()

        with pytest.raises(PreflightError, match=r"empty\.pdf: is empty \(0 bytes\)"):
            count_pdf_pages(path)

    def test_twenty_thousand_pages_counted(self, tmp_path: Path) -> None:
        path = make_pdf(tmp_path, "big.pdf", 20_000)

        count = count_pdf_pages(path)

        assert count.pages == 20_000
        assert count.stored_count == 20_000


class TestImages:
    def test_png_is_one_page(self, tmp_path: Path) -> None:
        spec = inspect_source(make_image(tmp_path, "a.png"))

        assert spec.kind == "image"
        assert spec.min_pages == 1
        assert spec.exact is True
        assert spec.content_type == "image/png"

    def test_animated_gif_page_per_frame(self, tmp_path: Path) -> None:
        spec = inspect_source(make_image(tmp_path, "anim.gif", frames=3))

        assert spec.min_pages == 3
        assert spec.exact is True
        assert spec.content_type == "image/gif"

    def test_multipage_tiff_page_per_frame(self, tmp_path: Path) -> None:
        spec = inspect_source(make_image(tmp_path, "scan.tiff", frames=4))

        assert spec.min_pages == 4
        assert spec.content_type == "image/tiff"

    def test_jpeg_content_type(self, tmp_path: Path) -> None:
        spec = inspect_source(make_image(tmp_path, "photo.JPG"))

        assert spec.min_pages == 1
        assert spec.content_type == "image/jpeg"

    def test_damaged_png_rejected(self, tmp_path: Path) -> None:
        path = tmp_path / "chart.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)

        reason = problem_of(path)

        assert reason.startswith("is damaged or not a PNG image (Pillow:")

    def test_mismatched_format_noted(self, tmp_path: Path) -> None:
        path = tmp_path / "photo.png"
        Image.new("RGB", (8, 8), "blue").save(path, format="JPEG")

        spec = inspect_source(path)

        assert spec.notes == ("is a JPEG image despite its .png extension",)


class TestOfficeAndText:
    def test_docx_at_least_one_page(self, tmp_path: Path) -> None:
        spec = inspect_source(make_docx(tmp_path, "letter.docx", ["Hello"]))

        assert spec.kind == "docx"
        assert spec.min_pages == 1
        assert spec.exact is False
        assert spec.content_type == (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        )

    def test_docx_that_is_not_zip_rejected(self, tmp_path: Path) -> None:
        path = make_text(tmp_path, "letter.docx", "plain text")

        reason = problem_of(path)

        assert reason.startswith("is damaged: a .docx file must be a ZIP container")

    def test_xlsx_without_content_types_rejected(self, tmp_path: Path) -> None:
        path = tmp_path / "sheet.xlsx"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("xl/workbook.xml", "<workbook/>")

        assert problem_of(path) == (
            "is damaged: a .xlsx file must contain [Content_Types].xml"
        )

    def test_text_at_least_one_page(self, tmp_path: Path) -> None:
        spec = inspect_source(make_text(tmp_path, "notes.txt"))

        assert spec.kind == "txt"
        assert (spec.min_pages, spec.exact) == (1, False)
        assert spec.content_type == "text/plain"

    def test_doc_without_ole2_signature_noted(self, tmp_path: Path) -> None:
        spec = inspect_source(make_text(tmp_path, "old.doc", "not really Word"))

        assert spec.kind == "doc"
        assert spec.content_type == "application/msword"
        assert spec.notes == (
            "is not an OLE2 (binary Office) file despite its .doc extension; "
            "PDF.co may still convert it",
        )

    def test_rtf_accepted(self, tmp_path: Path) -> None:
        spec = inspect_source(make_text(tmp_path, "memo.rtf", "{\\rtf1 Hello}"))

        assert spec.kind == "rtf"
        assert spec.content_type == "application/rtf"
        assert spec.notes == ()


class TestZip:
    def test_page_per_supported_member(self, tmp_path: Path) -> None:
        members = {
            "a.pdf": make_pdf(tmp_path, "a.pdf", 5),
            "docs/b.docx": make_docx(tmp_path, "b.docx", ["Hi"]),
            "c.png": make_image(tmp_path, "c.png"),
        }
        spec = inspect_source(make_zip(tmp_path, "bundle.zip", members))

        assert spec.kind == "zip"
        assert spec.min_pages == 3
        assert spec.exact is False
        assert spec.content_type == "application/zip"

    def test_unsupported_member_named(self, tmp_path: Path) -> None:
        members = {
            "a.pdf": make_pdf(tmp_path, "a.pdf", 1),
            "photos/b.webp": make_text(tmp_path, "b.webp"),
        }
        path = make_zip(tmp_path, "bundle.zip", members)

        reason = problem_of(path)

        assert reason.startswith(
            "member 'photos/b.webp' has an unsupported file type (.webp)"
        )

    def test_empty_zip_rejected(self, tmp_path: Path) -> None:
        path = make_zip(tmp_path, "empty.zip", {})

        assert problem_of(path) == "is an empty ZIP archive; it adds nothing to merge"

    def test_nested_zip_rejected(self, tmp_path: Path) -> None:
        inner = make_zip(
            tmp_path, "inner.zip", {"a.pdf": make_pdf(tmp_path, "a.pdf", 1)}
        )
        path = make_zip(tmp_path, "outer.zip", {"inner.zip": inner})

        assert problem_of(path).startswith("member 'inner.zip' is a nested ZIP archive")

    def test_macos_metadata_members_skipped(self, tmp_path: Path) -> None:
        pdf = make_pdf(tmp_path, "a.pdf", 1)
        path = make_zip(tmp_path, "mac.zip", {"a.pdf": pdf, "__MACOSX/._a.pdf": pdf})

        assert inspect_source(path).min_pages == 1

    def test_unsafe_member_name_rejected(self, tmp_path: Path) -> None:
        path = make_zip(
            tmp_path, "slip.zip", {"../evil.pdf": make_pdf(tmp_path, "a.pdf", 1)}
        )

        assert problem_of(path).startswith("member '../evil.pdf' has an unsafe name")

    def test_damaged_zip_rejected(self, tmp_path: Path) -> None:
        path = make_text(tmp_path, "bundle.zip", "PK but not really")

        assert problem_of(path).startswith("is damaged or not a ZIP archive")


class TestInspectSources:
    def test_specs_in_input_order(self, tmp_path: Path) -> None:
        sources: list[str | os.PathLike[str]] = [
            make_pdf(tmp_path, "a.pdf", 2),
            "https://example.com/b.docx",
            str(make_image(tmp_path, "c.gif", frames=2)),
        ]

        specs = inspect_sources(sources)

        assert [spec.source for spec in specs] == [os.fspath(s) for s in sources]
        assert [spec.min_pages for spec in specs] == [2, 1, 2]

    def test_every_problem_reported_once(self, tmp_path: Path) -> None:
        good_pdf = make_pdf(tmp_path, "good.pdf", 1)
        good_png = make_image(tmp_path, "good.png")
        missing = tmp_path / "missing.pdf"
        heic = tmp_path / "photo.heic"
        heic.write_bytes(b"heic")
        sources: list[str | os.PathLike[str]] = [
            good_pdf,
            missing,
            "ftp://example.com/x.pdf",
            good_png,
            heic,
        ]

        with pytest.raises(PreflightError) as caught:
            inspect_sources(sources)

        error = caught.value
        assert [source for source, _ in error.problems] == [
            str(missing),
            "ftp://example.com/x.pdf",
            str(heic),
        ]
        lines = error.message.splitlines()
        assert lines[0] == "3 of 5 inputs cannot be merged:"
        assert lines[1] == f"  {missing}: file not found; check the path"
        assert lines[2].startswith("  ftp://example.com/x.pdf: unsupported URL scheme")
        assert lines[3].startswith(f"  {heic}: PDF.co merge2 does not accept HEIC")
        assert len(lines) == 4

    def test_error_belongs_to_library_hierarchy(self, tmp_path: Path) -> None:
        with pytest.raises(PdfcoError):
            inspect_sources([tmp_path / "missing.pdf"])

    def test_empty_list_rejected(self) -> None:
        with pytest.raises(PreflightError, match="No inputs to merge") as caught:
            inspect_sources([])

        assert caught.value.problems == []

    def test_total_size_over_limit(self, tmp_path: Path) -> None:
        first = make_pdf(tmp_path, "a.pdf", 1)
        second = make_pdf(tmp_path, "b.pdf", 1)
        total = first.stat().st_size + second.stat().st_size

        with pytest.raises(PreflightError) as caught:
            inspect_sources([first, second], max_total_bytes=total - 1)

        assert caught.value.problems == [
            (
                "all inputs",
                f"total size {total} bytes exceeds the PDF.co merge2 limit of "
                f"{total - 1} bytes; split the inputs into several merges",
            )
        ]
        assert caught.value.message.splitlines() == [
            "The 2 inputs cannot be merged together:",
            f"  all inputs: {caught.value.problems[0][1]}",
        ]

    def test_total_size_in_binary_units(self, tmp_path: Path) -> None:
        first = make_text(tmp_path, "a.txt", "x" * 1500)
        second = make_text(tmp_path, "b.txt", "y" * 1500)

        with pytest.raises(PreflightError) as caught:
            inspect_sources([first, second], max_total_bytes=2048)

        assert caught.value.problems[0][1].startswith(
            "total size 2.9 KiB (3,000 bytes) exceeds the PDF.co merge2 limit of "
            "2.0 KiB (2,048 bytes)"
        )

    def test_size_problem_listed_with_input_problems(self, tmp_path: Path) -> None:
        first = make_pdf(tmp_path, "a.pdf", 1)
        missing = tmp_path / "missing.pdf"

        with pytest.raises(PreflightError) as caught:
            inspect_sources([first, missing], max_total_bytes=10)

        lines = caught.value.message.splitlines()
        assert lines[0] == "1 of 2 inputs cannot be merged:"
        assert lines[1] == f"  {missing}: file not found; check the path"
        assert lines[2].startswith("  all inputs: total size")

    def test_total_size_at_limit_accepted(self, tmp_path: Path) -> None:
        first = make_pdf(tmp_path, "a.pdf", 1)

        specs = inspect_sources([first], max_total_bytes=first.stat().st_size)

        assert len(specs) == 1

    def test_default_limit_is_two_gibibytes(self) -> None:
        assert MAX_TOTAL_BYTES == 2_147_483_648


class TestSamples:
    def test_samples_inspected(self) -> None:
        names = ["01-report.pdf", "02-letter.docx", "03-figures.xlsx", "04-chart.png"]

        specs = inspect_sources([str(SAMPLES / name) for name in names])

        assert [(spec.kind, spec.min_pages, spec.exact) for spec in specs] == [
            ("pdf", 3, True),
            ("docx", 1, False),
            ("xlsx", 1, False),
            ("image", 1, True),
        ]
        assert all(spec.notes == () for spec in specs)

    def test_generate_script_rewrites_samples(self, tmp_path: Path) -> None:
        script = SAMPLES / "generate.py"

        subprocess.run(
            [sys.executable, str(script), str(tmp_path)], check=True, timeout=120
        )

        written = sorted(path.name for path in tmp_path.iterdir())
        assert written == sorted(
            ["01-report.pdf", "02-letter.docx", "03-figures.xlsx", "04-chart.png"]
        )
        for name in written:
            fresh = (tmp_path / name).read_bytes()
            assert fresh == (SAMPLES / name).read_bytes(), (
                f"samples/{name} is stale: run `python samples/generate.py` and "
                "commit the result"
            )

    def test_report_pages_carry_text(self) -> None:
        reader = PdfReader(SAMPLES / "01-report.pdf")

        texts = [page.extract_text() for page in reader.pages]

        assert len(texts) == 3
        assert texts[0].startswith("Quarterly operations report")
        assert "Page 2 of 3" in texts[1]
        assert "Next steps" in texts[2]


def test_file_sha256_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))

    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_supported_extensions_cover_merge2_types() -> None:
    office = ["doc", "docx", "xls", "xlsx", "rtf", "txt"]
    images = ["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff"]

    assert sorted(SUPPORTED_EXTENSIONS) == sorted(["pdf", *office, *images, "zip"])
