"""The notebook entry point: `merge()`, its result display and block helpers."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.logging.configuration import ensure_logging_setup
from prefect.logging.handlers import PrefectConsoleHandler
from pydantic import SecretStr
from pypdf import PdfReader
from rich.console import Console

from pdfco_tasks._notebook_output import prefect_console
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import (
    ConfigurationError,
    PreflightError,
    ServerError,
    ValidationError,
)
from pdfco_tasks.notebook import (
    NotebookMergeResult,
    aload_credentials,
    load_credentials,
    merge,
    save_credentials,
)
from tests.factories import make_image, make_pdf

SANDBOX_CREDITS = 1_000_000


def flow_result(**changes: Any) -> dict[str, Any]:
    """Return a `merge_documents` result for two inputs of 3 and 2 pages."""
    result: dict[str, Any] = {
        "output": "/data/out/merged.pdf",
        "page_count": 5,
        "spans": [
            {"source": "/data/in/first.pdf", "first_page": 1, "last_page": 3},
            {"source": "/data/in/second.pdf", "first_page": 4, "last_page": 5},
        ],
        "job_id": "JOB123--1-60",
        "credits_used": 24,
        "remaining_credits": 976,
        "durations": {"upload": 0.5, "merge": 2.0, "total": 3.25},
        "resumed": False,
    }
    result.update(changes)
    return result


def sources_of(result: dict[str, Any]) -> list[str]:
    return [span["source"] for span in result["spans"]]


def build_result(**changes: Any) -> NotebookMergeResult:
    data = flow_result(**changes)
    return NotebookMergeResult.from_flow_result(data, sources_of(data))


def rich_text(renderable: Any) -> str:
    console = Console(record=True, file=io.StringIO(), width=140)
    console.print(renderable)
    return console.export_text()


class TestResultDisplay:
    def test_html_shows_spans_and_verdict(self) -> None:
        page = build_result()._repr_html_()

        assert "<code>/data/in/first.pdf</code>" in page
        assert "<code>/data/in/second.pdf</code>" in page
        assert "1&ndash;3" in page
        assert "4&ndash;5" in page
        assert "Validated: 5 pages = sum of inputs (3 + 2)." in page
        assert "color:#1a7f37" in page
        assert "JOB123--1-60" in page
        assert "24 credits used, 976 remaining" in page

    def test_html_escapes_odd_file_names(self) -> None:
        spans = [{"source": "in/<b>.pdf", "first_page": 1, "last_page": 1}]
        page = build_result(
            output="out/<i>&'.pdf", page_count=1, spans=spans
        )._repr_html_()

        assert "in/&lt;b&gt;.pdf" in page
        assert "out/&lt;i&gt;&amp;&#x27;.pdf" in page
        assert "<b>.pdf" not in page
        assert "<i>" not in page

    def test_html_drops_url_query_strings(self) -> None:
        url = "https://files.example.com/doc.pdf?X-Amz-Signature=SECRET"
        spans = [{"source": url, "first_page": 1, "last_page": 5}]
        page = build_result(spans=spans)._repr_html_()

        assert "https://files.example.com/doc.pdf" in page
        assert "SECRET" not in page

    def test_spans_with_gap_are_not_validated(self) -> None:
        spans = [
            {"source": "a.pdf", "first_page": 1, "last_page": 3},
            {"source": "b.pdf", "first_page": 5, "last_page": 5},
        ]
        result = build_result(spans=spans)

        assert result.validated is False
        assert result.verdict.startswith("Not validated: the page spans")
        assert "color:#c62828" in result._repr_html_()

    def test_failure_html_is_red_and_escaped(self) -> None:
        error = ValidationError("The merged PDF has 4 pages <not 5>.")
        result = NotebookMergeResult.from_error(
            error, ["a.pdf", "<b>.pdf"], "out/merged.pdf"
        )
        page = result._repr_html_()

        assert result.ok is False
        assert result.verdict == "Not validated: The merged PDF has 4 pages <not 5>."
        assert "color:#c62828" in page
        assert "Merge failed: ValidationError" in page
        assert "The merged PDF has 4 pages &lt;not 5&gt;." in page
        assert "<code>&lt;b&gt;.pdf</code>" in page
        assert "Nothing was written to <code>out/merged.pdf</code>" in page

    def test_failure_verdict_names_error_type(self) -> None:
        error = ServerError("PDF.co answered 503 three times.", status_code=503)
        result = NotebookMergeResult.from_error(error, ["a.pdf"], "out.pdf")

        assert (
            result.verdict == "Failed (ServerError): PDF.co answered 503 three times."
        )

    def test_rich_table_shows_spans_and_verdict(self) -> None:
        text = rich_text(build_result())

        assert "/data/in/first.pdf" in text
        assert "/data/in/second.pdf" in text
        assert re.search(r"\b4\W5\b", text)
        assert "Validated: 5 pages = sum of inputs (3 + 2)." in text

    def test_rich_failure_shows_error(self) -> None:
        error = PreflightError("missing.pdf: file not found; check the path")
        text = rich_text(NotebookMergeResult.from_error(error, ["x"], "out.pdf"))

        assert "Merge failed: PreflightError" in text
        assert "missing.pdf: file not found; check the path" in text

    def test_to_dict_is_json_ready(self) -> None:
        data = build_result().to_dict()

        assert json.loads(json.dumps(data)) == data
        assert data["ok"] is True
        assert data["page_count"] == 5
        assert data["spans"][1] == {
            "source": "/data/in/second.pdf",
            "first_page": 4,
            "last_page": 5,
        }
        assert data["verdict"] == "Validated: 5 pages = sum of inputs (3 + 2)."
        assert "exception" not in data

    def test_raise_for_error_reraises_stored_error(self) -> None:
        error = PreflightError("bad input")
        failed = NotebookMergeResult.from_error(error, ["a.pdf"], "out.pdf")

        with pytest.raises(PreflightError, match="bad input"):
            failed.raise_for_error()
        build_result().raise_for_error()


class TestConsoleLogs:
    @pytest.fixture
    def console_handler(self) -> Iterator[tuple[PrefectConsoleHandler, io.StringIO]]:
        # Prefect replaces the root handlers when it configures logging, so that
        # happens before the test handler is added.
        ensure_logging_setup()
        stream = io.StringIO()
        handler = PrefectConsoleHandler(stream=stream)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        yield handler, stream
        root.removeHandler(handler)

    def log_failure(self, error: Exception) -> None:
        logger = logging.getLogger("tests.notebook_api")
        try:
            raise error
        except Exception:
            logger.exception("Task run failed with exception: %r", error)

    def test_pdfco_error_logged_without_traceback(
        self, console_handler: tuple[PrefectConsoleHandler, io.StringIO]
    ) -> None:
        _, stream = console_handler

        with prefect_console(quiet=False):
            self.log_failure(PreflightError("missing.pdf: file not found"))

        output = stream.getvalue()
        assert "Task run failed with exception: PreflightError" in output
        assert "Traceback" not in output

    def test_other_errors_keep_traceback(
        self, console_handler: tuple[PrefectConsoleHandler, io.StringIO]
    ) -> None:
        _, stream = console_handler

        with prefect_console(quiet=False):
            self.log_failure(KeyError("bug"))

        assert "Traceback" in stream.getvalue()

    def test_quiet_holds_back_info_then_restores(
        self, console_handler: tuple[PrefectConsoleHandler, io.StringIO]
    ) -> None:
        handler, stream = console_handler
        formatter = handler.formatter
        logger = logging.getLogger("tests.notebook_api")
        logger.setLevel(logging.INFO)

        with prefect_console(quiet=True):
            logger.info("hidden while quiet")
            logger.warning("shown while quiet")
        logger.info("shown afterwards")

        output = stream.getvalue()
        assert "hidden while quiet" not in output
        assert "shown while quiet" in output
        assert "shown afterwards" in output
        assert handler.formatter is formatter


@pytest.mark.usefixtures("prefect_harness", "state_dir")
class TestMerge:
    def test_shared_sandbox_merge_returns_result(
        self, tmp_path: Path, pdfco_sandbox: Any
    ) -> None:
        report = make_pdf(tmp_path, "report.pdf", 3)
        chart = make_image(tmp_path, "chart.png")
        output = tmp_path / "out" / "merged.pdf"

        result = merge([report, chart], output, sandbox=pdfco_sandbox, progress=False)

        assert result.ok is True
        assert result.output == str(output)
        assert result.page_count == 4
        assert len(PdfReader(output).pages) == 4
        assert [(s.source, s.first_page, s.last_page) for s in result.spans] == [
            (str(report), 1, 3),
            (str(chart), 4, 4),
        ]
        assert result.job_id
        assert result.credits_used == SANDBOX_CREDITS - pdfco_sandbox.balance()
        assert result.verdict == "Validated: 4 pages = sum of inputs (3 + 1)."

    def test_own_sandbox_merge_escapes_names(self, tmp_path: Path) -> None:
        odd = make_pdf(tmp_path, "<b>&.pdf", 2)
        output = tmp_path / "merged.pdf"

        result = merge(odd, output, sandbox=True, progress=False)
        page = result._repr_html_()

        assert result.page_count == 2
        assert f"<code>{tmp_path}/&lt;b&gt;&amp;.pdf</code>" in page
        assert "<b>" not in page
        assert "Validated: 2 pages = sum of inputs (2)." in page

    def test_plain_python_progress_goes_to_stderr(
        self, tmp_path: Path, pdfco_sandbox: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        report = make_pdf(tmp_path, "report.pdf", 1)

        merge([report], tmp_path / "merged.pdf", sandbox=pdfco_sandbox)

        errors = capsys.readouterr().err
        assert "Upload report.pdf" in errors
        assert "Validate" in errors

    def test_failure_returns_result_when_asked(self, tmp_path: Path) -> None:
        missing = tmp_path / "missing.pdf"
        output = tmp_path / "merged.pdf"

        result = merge(
            [missing], output, sandbox=True, progress=False, raise_on_failure=False
        )

        assert result.ok is False
        assert result.error_type == "PreflightError"
        assert f"{missing}: file not found" in str(result.error)
        assert isinstance(result.exception, PreflightError)
        assert "Merge failed: PreflightError" in result._repr_html_()
        assert not output.exists()

    def test_failure_raises_with_short_ipython_rendering(self, tmp_path: Path) -> None:
        missing = tmp_path / "missing.pdf"

        with pytest.raises(
            PreflightError, match=r"missing\.pdf: file not found"
        ) as info:
            merge([missing], tmp_path / "merged.pdf", sandbox=True, progress=False)

        lines = info.value._render_traceback_()  # type: ignore[attr-defined]
        assert "PreflightError" in lines[0]
        assert "missing.pdf: file not found" in lines[0]
        assert "%debug" in lines[-1]
        assert info.value.__traceback__ is not None

    def test_credentials_and_sandbox_rejected(self, tmp_path: Path) -> None:
        block = PdfcoCredentials(api_key=SecretStr("key"))

        with pytest.raises(ConfigurationError, match="either credentials or sandbox"):
            merge(
                [tmp_path / "a.pdf"],
                tmp_path / "o.pdf",
                credentials=block,
                sandbox=True,
            )

    def test_unknown_block_name_rejected(self, tmp_path: Path) -> None:
        with pytest.raises(
            ConfigurationError, match=r"No PdfcoCredentials block .*'nope'"
        ):
            merge([tmp_path / "a.pdf"], tmp_path / "o.pdf", credentials="nope")

    def test_unknown_block_name_as_result(self, tmp_path: Path) -> None:
        result = merge(
            [tmp_path / "a.pdf"],
            tmp_path / "o.pdf",
            credentials="nope",
            raise_on_failure=False,
        )

        assert result.ok is False
        assert result.error_type == "ConfigurationError"
        assert "No PdfcoCredentials block is saved under the name 'nope'" in str(
            result.error
        )

    def test_saved_block_name_merges(self, tmp_path: Path, pdfco_sandbox: Any) -> None:
        block = PdfcoCredentials(
            api_key=SecretStr(pdfco_sandbox.api_key), base_url=pdfco_sandbox.base_url
        )
        save_credentials(block, "notebook-api-merge")
        report = make_pdf(tmp_path, "report.pdf", 2)

        result = merge(
            [report],
            tmp_path / "merged.pdf",
            credentials="notebook-api-merge",
            progress=False,
        )

        assert result.page_count == 2
        assert result.credits_used == SANDBOX_CREDITS - pdfco_sandbox.balance()


@pytest.mark.usefixtures("prefect_harness")
class TestCredentialHelpers:
    def test_load_in_running_loop_returns_block(self) -> None:
        saved = PdfcoCredentials(
            api_key=SecretStr("loop-key"), base_url="http://127.0.0.1:9/v1"
        )
        save_credentials(saved, "notebook-api-load")

        async def load_inside_loop() -> Any:
            asyncio.get_running_loop()
            return load_credentials("notebook-api-load")

        block = asyncio.run(load_inside_loop())

        assert isinstance(block, PdfcoCredentials)
        assert block.api_key is not None
        assert block.api_key.get_secret_value() == "loop-key"
        assert block.base_url == "http://127.0.0.1:9/v1"

    def test_prefect_load_in_running_loop_is_coroutine(self) -> None:
        save_credentials(PdfcoCredentials(), "notebook-api-plain")

        async def plain_load_inside_loop() -> bool:
            pending = PdfcoCredentials.load("notebook-api-plain")
            is_coroutine = inspect.iscoroutine(pending)
            if is_coroutine:
                await pending
            return is_coroutine

        assert asyncio.run(plain_load_inside_loop()) is True

    def test_save_in_running_loop_saves(self) -> None:
        block = PdfcoCredentials(base_url="http://127.0.0.1:8/v1")

        async def save_inside_loop() -> Any:
            return save_credentials(block, "notebook-api-save")

        document_id = asyncio.run(save_inside_loop())
        loaded = load_credentials("notebook-api-save")

        assert document_id is not None
        assert loaded.base_url == "http://127.0.0.1:8/v1"

    def test_save_without_overwrite_rejects_existing(self) -> None:
        save_credentials(PdfcoCredentials(), "notebook-api-taken")

        with pytest.raises(ValueError, match="already in use"):
            save_credentials(PdfcoCredentials(), "notebook-api-taken", overwrite=False)

    def test_aload_returns_block(self) -> None:
        save_credentials(PdfcoCredentials(read_timeout=7.0), "notebook-api-aload")

        block = asyncio.run(aload_credentials("notebook-api-aload"))

        assert block.read_timeout == 7.0

    def test_load_unknown_name_raises(self) -> None:
        with pytest.raises(ConfigurationError, match="prefect block ls"):
            load_credentials("notebook-api-unknown")
