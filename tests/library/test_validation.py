"""Tests of merged-PDF validation, page spans and keeping rejected downloads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pdfco_tasks.client import PdfcoClient
from pdfco_tasks.exceptions import ValidationError
from pdfco_tasks.inspection import inspect_sources
from pdfco_tasks.models import InputSpec, PageSpan
from pdfco_tasks.sandbox.server import Sandbox
from pdfco_tasks.settings import PdfcoSettings, PollingPolicy
from pdfco_tasks.validation import (
    ValidationReport,
    expected_pages,
    keep_rejected,
    validate_merged_pdf,
)
from tests.factories import (
    make_docx,
    make_image,
    make_pdf,
    make_pdf_with_bookmarks,
    make_pdf_with_wrong_count,
)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def exact(source: str, pages: int) -> InputSpec:
    return InputSpec(source, "pdf", 100, "0" * 64, pages, True, "application/pdf")


def converted(source: str, pages: int = 1) -> InputSpec:
    return InputSpec(source, "docx", 100, "0" * 64, pages, False)


def spans_of(report: ValidationReport) -> list[tuple[str, int, int]]:
    return [(span.source, span.first_page, span.last_page) for span in report.spans]


class TestExpectedPages:
    def test_all_exact(self) -> None:
        assert expected_pages([exact("a.pdf", 3), exact("b.png", 1)]) == (4, True)

    def test_one_converted_input(self) -> None:
        assert expected_pages([exact("a.pdf", 3), converted("b.docx")]) == (4, False)

    def test_no_inputs(self) -> None:
        assert expected_pages([]) == (0, True)


class TestValidMerges:
    def test_exact_inputs_give_exact_spans(self, tmp_path: Path) -> None:
        merged = make_pdf(tmp_path, "out.pdf", 6)
        inputs = [exact("a.pdf", 3), exact("b.png", 1), exact("c.pdf", 2)]

        report = validate_merged_pdf(merged, inputs, reported_page_count=6)

        assert report.page_count == 6
        assert report.expected_min == 6
        assert report.exact is True
        assert spans_of(report) == [("a.pdf", 1, 3), ("b.png", 4, 4), ("c.pdf", 5, 6)]
        assert report.notes == ()

    def test_one_converted_input_takes_remainder(self, tmp_path: Path) -> None:
        merged = make_pdf(tmp_path, "out.pdf", 7)
        inputs = [exact("a.pdf", 3), converted("b.docx"), exact("c.png", 1)]

        report = validate_merged_pdf(merged, inputs)

        assert report.exact is False
        assert report.expected_min == 5
        assert spans_of(report) == [("a.pdf", 1, 3), ("b.docx", 4, 6), ("c.png", 7, 7)]
        assert report.notes == ()

    def test_several_converted_inputs_estimated(self, tmp_path: Path) -> None:
        merged = make_pdf(tmp_path, "out.pdf", 6)
        inputs = [converted("a.docx"), exact("b.pdf", 2), converted("c.xlsx")]

        report = validate_merged_pdf(merged, inputs)

        assert spans_of(report) == [("a.docx", 1, 1), ("b.pdf", 2, 3), ("c.xlsx", 4, 6)]
        assert report.notes == (
            "page spans of the converted inputs (a.docx, c.xlsx) are estimates: "
            "each is given its minimum and the last one the 2 pages left over; "
            "merge with the GenerateBookmarks profile to get exact spans",
        )

    def test_several_converted_inputs_at_minimum_exact(self, tmp_path: Path) -> None:
        merged = make_pdf(tmp_path, "out.pdf", 4)
        inputs = [converted("a.docx"), exact("b.pdf", 2), converted("c.xlsx")]

        report = validate_merged_pdf(merged, inputs)

        assert spans_of(report) == [("a.docx", 1, 1), ("b.pdf", 2, 3), ("c.xlsx", 4, 4)]
        assert report.notes == ()

    def test_stored_count_disagreement_noted(self, tmp_path: Path) -> None:
        merged = make_pdf_with_wrong_count(tmp_path, "out.pdf", 3, stored_count=5)

        report = validate_merged_pdf(merged, [exact("a.pdf", 3)])

        assert report.page_count == 3
        assert report.notes == (
            "the page tree stores /Count 5, but walking it finds 3 pages; using 3",
        )

    def test_report_to_dict(self, tmp_path: Path) -> None:
        merged = make_pdf(tmp_path, "out.pdf", 2)

        report = validate_merged_pdf(merged, [exact("a.pdf", 2)])

        assert report.to_dict() == {
            "page_count": 2,
            "spans": [{"source": "a.pdf", "first_page": 1, "last_page": 2}],
            "expected_min": 2,
            "exact": True,
            "notes": [],
        }

    def test_no_inputs_rejected(self, tmp_path: Path) -> None:
        merged = make_pdf(tmp_path, "out.pdf", 1)

        with pytest.raises(ValueError, match="inputs must not be empty"):
            validate_merged_pdf(merged, [])


class TestSpansFromBookmarks:
    def test_bookmarks_give_exact_spans(self, tmp_path: Path) -> None:
        merged = make_pdf_with_bookmarks(
            tmp_path,
            "out.pdf",
            7,
            [("a.pdf", 0), ("b.docx", 2), ("c.xlsx", 5)],
        )
        inputs = [exact("/data/in/a.pdf", 2), converted("b.docx"), converted("c.xlsx")]

        report = validate_merged_pdf(merged, inputs)

        assert spans_of(report) == [
            ("/data/in/a.pdf", 1, 2),
            ("b.docx", 3, 5),
            ("c.xlsx", 6, 7),
        ]
        assert report.notes == ()

    def test_url_inputs_match_by_file_name(self, tmp_path: Path) -> None:
        merged = make_pdf_with_bookmarks(
            tmp_path, "out.pdf", 5, [("report.docx", 0), ("b.pdf", 3)]
        )
        url = InputSpec(
            "https://example.com/x/report.docx?sig=1", "url", 0, "", 1, False
        )

        report = validate_merged_pdf(merged, [url, exact("b.pdf", 2)])

        assert [span.pages for span in report.spans] == [3, 2]

    def test_bookmarks_against_exact_count_rejected(self, tmp_path: Path) -> None:
        merged = make_pdf_with_bookmarks(
            tmp_path, "out.pdf", 5, [("a.pdf", 0), ("b.docx", 2)]
        )
        inputs = [exact("a.pdf", 3), converted("b.docx")]

        with pytest.raises(ValidationError) as caught:
            validate_merged_pdf(merged, inputs)

        lines = caught.value.message.splitlines()
        assert lines[0] == (
            f"Merged PDF {merged} places a.pdf at pages 1-2 (2 pages) according to "
            "its bookmarks, but that input has 3 pages."
        )
        assert "  a.pdf: 3 pages" in lines
        assert "  b.docx: at least 1 page" in lines
        assert "Merged file: 5 pages." in lines

    def test_foreign_outline_ignored(self, tmp_path: Path) -> None:
        # Two chapter bookmarks that came with the first input, not one per input.
        merged = make_pdf_with_bookmarks(
            tmp_path, "out.pdf", 5, [("Introduction", 0), ("Results", 1)]
        )
        inputs = [exact("a.pdf", 3), converted("b.docx")]

        report = validate_merged_pdf(merged, inputs)

        assert spans_of(report) == [("a.pdf", 1, 3), ("b.docx", 4, 5)]

    def test_out_of_order_bookmarks_ignored(self, tmp_path: Path) -> None:
        merged = make_pdf_with_bookmarks(
            tmp_path, "out.pdf", 4, [("a.docx", 2), ("b.docx", 0)]
        )
        inputs = [converted("a.docx"), converted("b.docx")]

        report = validate_merged_pdf(merged, inputs)

        assert spans_of(report) == [("a.docx", 1, 1), ("b.docx", 2, 4)]
        assert report.notes[0] == (
            "the outline has one bookmark per input, but their pages are not in "
            "input order; page spans were computed from page counts instead"
        )
        assert report.notes[1].startswith("page spans of the converted inputs")


class TestRejectedFiles:
    inputs = (exact("a.pdf", 3), converted("b.docx"), exact("c.png", 1))

    def assert_lists_inputs(self, message: str, merged: str) -> None:
        lines = message.splitlines()
        assert "Expected pages per input:" in lines
        assert "  a.pdf: 3 pages" in lines
        assert "  b.docx: at least 1 page" in lines
        assert "  c.png: 1 page" in lines
        assert "  total: at least 5 pages" in lines
        assert f"Merged file: {merged}." in lines

    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "out.pdf"

        with pytest.raises(ValidationError) as caught:
            validate_merged_pdf(path, self.inputs)

        message = caught.value.message
        assert message.startswith(f"Merged PDF {path} does not exist.")
        assert message.endswith("Rerun the download or the merge.")
        self.assert_lists_inputs(message, "not readable")

    def test_empty_file(self, tmp_path: Path) -> None:
        path = tmp_path / "out.pdf"
        path.touch()

        with pytest.raises(ValidationError, match=r"is empty \(0 bytes\)\.") as caught:
            validate_merged_pdf(path, self.inputs)

        self.assert_lists_inputs(caught.value.message, "not readable")

    def test_not_a_pdf(self, tmp_path: Path) -> None:
        path = tmp_path / "out.pdf"
        path.write_bytes(b"<html><body>AccessDenied</body></html>\n%%EOF\n")

        with pytest.raises(ValidationError) as caught:
            validate_merged_pdf(path, self.inputs)

        message = caught.value.message
        assert message.splitlines()[0] == (
            f"Merged PDF {path} is not a PDF: it starts with b'<html', not b'%PDF-'."
        )
        assert message.endswith(
            "The download is incomplete or is not the merge result; download the "
            "result again, or rerun the merge if the result link has expired."
        )
        self.assert_lists_inputs(message, "not readable")

    def test_short_file(self, tmp_path: Path) -> None:
        path = tmp_path / "out.pdf"
        path.write_bytes(b"%PDF-1.7\n")

        with pytest.raises(ValidationError) as caught:
            validate_merged_pdf(path, self.inputs)

        assert caught.value.message.splitlines()[0] == (
            f"Merged PDF {path} is truncated: no %%EOF marker in its last 1024 "
            "bytes (9 bytes in total)."
        )

    def test_truncated_without_eof(self, tmp_path: Path) -> None:
        whole = make_pdf(tmp_path, "whole.pdf", 5)
        path = tmp_path / "out.pdf"
        path.write_bytes(whole.read_bytes()[:-200])

        with pytest.raises(ValidationError, match="is truncated: no %%EOF") as caught:
            validate_merged_pdf(path, self.inputs)

        self.assert_lists_inputs(caught.value.message, "not readable")

    def test_unparseable_pdf(self, tmp_path: Path) -> None:
        path = tmp_path / "out.pdf"
        path.write_bytes(b"%PDF-1.7\n" + b"garbage " * 40 + b"\n%%EOF\n")

        with pytest.raises(ValidationError) as caught:
            validate_merged_pdf(path, self.inputs)

        first = caught.value.message.splitlines()[0]
        assert first.startswith(
            f"Merged PDF {path} is damaged: pypdf cannot read it (PdfReadError:"
        )

    def test_fewer_pages_than_exact_sum(self, tmp_path: Path) -> None:
        path = make_pdf(tmp_path, "out.pdf", 3)
        inputs = [exact("a.pdf", 3), exact("b.pdf", 1)]

        with pytest.raises(ValidationError) as caught:
            validate_merged_pdf(path, inputs)

        error = caught.value
        assert error.message.splitlines() == [
            f"Merged PDF {path} has 3 pages, but its inputs add up to exactly 4 pages.",
            "Expected pages per input:",
            "  a.pdf: 3 pages",
            "  b.pdf: 1 page",
            "  total: exactly 4 pages",
            "Merged file: 3 pages.",
            "PDF.co dropped or added pages; rerun the merge, and if the count is "
            "wrong again, merge the inputs in smaller groups to find the input that "
            "converts differently.",
        ]
        assert error.context["page_count"] == 3
        assert error.context["expected_min"] == 4

    def test_more_pages_than_exact_sum(self, tmp_path: Path) -> None:
        path = make_pdf(tmp_path, "out.pdf", 5)

        with pytest.raises(ValidationError, match="has 5 pages, but its inputs add up"):
            validate_merged_pdf(path, [exact("a.pdf", 4)])

    def test_fewer_pages_than_minimum(self, tmp_path: Path) -> None:
        path = make_pdf(tmp_path, "out.pdf", 4)

        with pytest.raises(ValidationError) as caught:
            validate_merged_pdf(path, self.inputs)

        message = caught.value.message
        assert message.splitlines()[0] == (
            f"Merged PDF {path} has 4 pages, but its inputs add up to at least 5 pages."
        )
        self.assert_lists_inputs(message, "4 pages")

    def test_reported_page_count_disagrees(self, tmp_path: Path) -> None:
        path = make_pdf(tmp_path, "out.pdf", 6)

        with pytest.raises(ValidationError) as caught:
            validate_merged_pdf(path, self.inputs, reported_page_count=7)

        message = caught.value.message
        assert message.splitlines()[0] == (
            f"Merged PDF {path} has 6 pages, but PDF.co reported 7 (pageCount)."
        )
        assert "PDF.co reported: 7 pages." in message.splitlines()
        assert "download the result again" in message
        self.assert_lists_inputs(message, "6 pages")

    def test_signed_url_query_left_out(self, tmp_path: Path) -> None:
        path = make_pdf(tmp_path, "out.pdf", 1)
        url = "https://files.example.com/in/b.docx?X-Amz-Signature=secret"
        inputs = [exact("a.pdf", 1), InputSpec(url, "url", 0, "", 1, False)]

        with pytest.raises(ValidationError) as caught:
            validate_merged_pdf(path, inputs)

        assert "secret" not in caught.value.message
        assert "  https://files.example.com/in/b.docx: at least 1 page" in (
            caught.value.message.splitlines()
        )


class TestKeepRejected:
    def test_moved_beside_output(self, tmp_path: Path) -> None:
        download = tmp_path / ".out.pdf.part"
        download.write_bytes(b"%PDF-1.7 broken")
        output = tmp_path / "out.pdf"

        kept = keep_rejected(download, output)

        assert kept == tmp_path / "out.FAILED-VALIDATION.pdf"
        assert kept.read_bytes() == b"%PDF-1.7 broken"
        assert not download.exists()
        assert not output.exists()

    def test_taken_names_get_numbers(self, tmp_path: Path) -> None:
        output = tmp_path / "out.pdf"
        kept = []
        for attempt in range(3):
            download = tmp_path / f"download-{attempt}"
            download.write_bytes(f"attempt {attempt}".encode())
            kept.append(keep_rejected(download, output))

        assert [path.name for path in kept] == [
            "out.FAILED-VALIDATION.pdf",
            "out.FAILED-VALIDATION-2.pdf",
            "out.FAILED-VALIDATION-3.pdf",
        ]
        assert kept[0].read_bytes() == b"attempt 0"
        assert kept[2].read_bytes() == b"attempt 2"

    def test_output_without_suffix(self, tmp_path: Path) -> None:
        download = tmp_path / "download"
        download.write_bytes(b"x")

        kept = keep_rejected(download, tmp_path / "merged")

        assert kept.name == "merged.FAILED-VALIDATION.pdf"

    def test_existing_output_untouched(self, tmp_path: Path) -> None:
        output = tmp_path / "out.pdf"
        output.write_bytes(b"previous good result")
        download = tmp_path / "download"
        download.write_bytes(b"bad")

        keep_rejected(download, output)

        assert output.read_bytes() == b"previous good result"

    def test_missing_download_leaves_nothing(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            keep_rejected(tmp_path / "absent", tmp_path / "out.pdf")

        assert list(tmp_path.iterdir()) == []


def merge_in_sandbox(
    sandbox: Sandbox, sources: list[Path], output: Path, *, bookmarks: bool
) -> tuple[list[InputSpec], int | None]:
    """Inspect, upload and merge `sources` in the sandbox; download to `output`."""
    specs = inspect_sources(sources)
    settings = PdfcoSettings(
        api_key=sandbox.api_key,
        base_url=sandbox.base_url,
        polling=PollingPolicy(first_interval=0.05, max_interval=0.5, deadline=300.0),
    )
    with PdfcoClient(settings) as client:
        urls = [
            client.upload_file(Path(spec.source), content_type=spec.content_type).url
            for spec in specs
        ]
        job = client.submit_merge(urls, name=output.name, bookmarks=bookmarks)
        status = client.wait_for_job(job)
        client.download(status.url or job.result_url, output)
    return specs, status.page_count


class TestSandboxMerges:
    def test_images_and_pdf_with_bookmarks(
        self, pdfco_sandbox: Sandbox, tmp_path: Path
    ) -> None:
        sources = [
            make_pdf(tmp_path, "a.pdf", 2),
            make_image(tmp_path, "b.gif", frames=3),
            make_image(tmp_path, "c.png"),
        ]
        output = tmp_path / "out" / "merged.pdf"

        specs, reported = merge_in_sandbox(
            pdfco_sandbox, sources, output, bookmarks=True
        )
        report = validate_merged_pdf(output, specs, reported_page_count=reported)

        assert report.page_count == 6
        assert [(span.first_page, span.last_page) for span in report.spans] == [
            (1, 2),
            (3, 5),
            (6, 6),
        ]
        assert report.notes == ()

    @pytest.mark.soffice
    def test_bookmarks_locate_converted_pages(
        self, pdfco_sandbox: Sandbox, tmp_path: Path
    ) -> None:
        sources = [
            make_docx(tmp_path, "two.docx", ["Page text"], pages=2),
            make_docx(tmp_path, "one.docx", ["Short"]),
            make_pdf(tmp_path, "tail.pdf", 1),
        ]
        output = tmp_path / "merged.pdf"

        specs, reported = merge_in_sandbox(
            pdfco_sandbox, sources, output, bookmarks=True
        )
        report = validate_merged_pdf(output, specs, reported_page_count=reported)

        assert report.page_count == 4
        assert [(span.first_page, span.last_page) for span in report.spans] == [
            (1, 2),
            (3, 3),
            (4, 4),
        ]
        assert report.notes == ()

    @pytest.mark.soffice
    def test_samples_merge_to_six_pages(
        self, pdfco_sandbox: Sandbox, tmp_path: Path
    ) -> None:
        names = ["01-report.pdf", "02-letter.docx", "03-figures.xlsx", "04-chart.png"]
        output = tmp_path / "samples.pdf"

        specs, reported = merge_in_sandbox(
            pdfco_sandbox, [SAMPLES / name for name in names], output, bookmarks=False
        )
        report = validate_merged_pdf(output, specs, reported_page_count=reported)

        assert report.page_count == 6
        assert report.expected_min == 6
        assert [(span.first_page, span.last_page) for span in report.spans] == [
            (1, 3),
            (4, 4),
            (5, 5),
            (6, 6),
        ]


def test_validation_error_message_has_no_traceback_text(tmp_path: Path) -> None:
    path = make_pdf(tmp_path, "out.pdf", 1)

    with pytest.raises(ValidationError) as caught:
        validate_merged_pdf(path, [exact("a.pdf", 2)])

    assert not re.search(r"Traceback|File \"", caught.value.message)
    assert str(caught.value) == caught.value.message


def test_page_span_pages() -> None:
    assert PageSpan("a.pdf", 4, 6).pages == 3
