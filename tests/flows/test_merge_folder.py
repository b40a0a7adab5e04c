"""The merge_folder flow on the real Prefect engine against the sandbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from pydantic import SecretStr
from pypdf import PdfReader

from flows.merge_folder import merge_folder
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import PreflightError
from pdfco_tasks.folders import read_state, state_path
from tests.factories import make_pdf

KEY = "folder-key"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    from pdfco_tasks.sandbox import Sandbox

    with Sandbox(api_keys=(KEY,)) as server:
        yield server


@pytest.fixture
def credentials(sandbox: Any, state_dir: Path) -> PdfcoCredentials:
    return PdfcoCredentials(api_key=SecretStr(KEY), base_url=sandbox.base_url)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """A folder with 1, 2 and 10 pages in files named so 10 sorts last."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    make_pdf(folder, "10.pdf", 3)
    make_pdf(folder, "2.pdf", 2)
    make_pdf(folder, "1.pdf", 1)
    return folder


def submissions(sandbox: Any) -> int:
    return int(sandbox.counters()["merge_submissions_total"])


def today(zone: str) -> str:
    return datetime.now(ZoneInfo(zone)).strftime("%Y-%m-%d")


class TestMergeFolder:
    def test_merges_in_natural_order(
        self, tmp_path: Path, inbox: Path, credentials: PdfcoCredentials
    ) -> None:
        out = tmp_path / "out"

        result = merge_folder(
            str(inbox), str(out), credentials=credentials, timezone="Asia/Tokyo"
        )

        expected = out / f"merged-{today('Asia/Tokyo')}.pdf"
        assert result["status"] == "merged"
        assert result["inputs"] == ["1.pdf", "2.pdf", "10.pdf"]
        assert result["output"] == str(expected)
        assert result["page_count"] == 6
        assert len(PdfReader(expected).pages) == 6
        spans = [(s["first_page"], s["last_page"]) for s in result["spans"]]
        assert spans == [(1, 1), (2, 3), (4, 6)]

    def test_state_written_after_success(
        self, tmp_path: Path, inbox: Path, credentials: PdfcoCredentials
    ) -> None:
        out = tmp_path / "out"

        result = merge_folder(str(inbox), str(out), credentials=credentials)

        state = read_state(state_path(out, inbox, "*.pdf"))
        assert state is not None
        assert state.fingerprint == result["fingerprint"]
        assert state.job_id == result["job_id"]
        assert state.output == result["output"]
        assert state.page_count == 6

    def test_unchanged_folder_skipped(
        self,
        tmp_path: Path,
        inbox: Path,
        credentials: PdfcoCredentials,
        sandbox: Any,
    ) -> None:
        out = tmp_path / "out"
        first = merge_folder(str(inbox), str(out), credentials=credentials)
        before = submissions(sandbox)

        state = merge_folder(
            str(inbox), str(out), credentials=credentials, return_state=True
        )

        second = state.result()
        assert state.is_completed()
        assert second["status"] == "skipped"
        assert second["reason"] == "unchanged"
        assert second["output"] == first["output"]
        assert second["job_id"] == first["job_id"]
        assert submissions(sandbox) == before

    def test_changed_input_merges_again(
        self,
        tmp_path: Path,
        inbox: Path,
        credentials: PdfcoCredentials,
        sandbox: Any,
    ) -> None:
        out = tmp_path / "out"
        first = merge_folder(str(inbox), str(out), credentials=credentials)
        make_pdf(inbox, "3.pdf", 4)
        before = submissions(sandbox)

        second = merge_folder(
            str(inbox), str(out), credentials=credentials, overwrite=True
        )

        assert second["status"] == "merged"
        assert second["inputs"] == ["1.pdf", "2.pdf", "3.pdf", "10.pdf"]
        assert second["page_count"] == 10
        assert second["fingerprint"] != first["fingerprint"]
        assert submissions(sandbox) == before + 1
        assert len(PdfReader(second["output"]).pages) == 10

    def test_changed_input_without_overwrite_fails(
        self, tmp_path: Path, inbox: Path, credentials: PdfcoCredentials
    ) -> None:
        out = tmp_path / "out"
        first = merge_folder(str(inbox), str(out), credentials=credentials)
        make_pdf(inbox, "3.pdf", 4)

        with pytest.raises(
            PreflightError, match="already exists; allow overwriting it"
        ):
            merge_folder(str(inbox), str(out), credentials=credentials)

        state = read_state(state_path(out, inbox, "*.pdf"))
        assert state is not None
        assert state.fingerprint == first["fingerprint"]

    def test_deleted_output_merges_again(
        self, tmp_path: Path, inbox: Path, credentials: PdfcoCredentials
    ) -> None:
        out = tmp_path / "out"
        first = merge_folder(str(inbox), str(out), credentials=credentials)
        Path(first["output"]).unlink()

        second = merge_folder(str(inbox), str(out), credentials=credentials)

        assert second["status"] == "merged"
        assert Path(second["output"]).is_file()

    def test_skip_unchanged_off_merges(
        self, tmp_path: Path, inbox: Path, credentials: PdfcoCredentials
    ) -> None:
        out = tmp_path / "out"
        merge_folder(str(inbox), str(out), credentials=credentials)

        second = merge_folder(
            str(inbox),
            str(out),
            credentials=credentials,
            skip_unchanged=False,
            overwrite=True,
        )

        assert second["status"] == "merged"

    def test_empty_folder_skipped(
        self, tmp_path: Path, credentials: PdfcoCredentials, sandbox: Any
    ) -> None:
        empty = tmp_path / "empty"
        empty.mkdir()
        before = submissions(sandbox)

        state = merge_folder(
            str(empty),
            str(tmp_path / "out"),
            credentials=credentials,
            return_state=True,
        )

        result = state.result()
        assert state.is_completed()
        assert result["status"] == "skipped"
        assert result["reason"] == "no-inputs"
        assert result["inputs"] == []
        assert submissions(sandbox) == before
        assert not (tmp_path / "out").exists()

    def test_mtime_order_and_template(
        self, tmp_path: Path, credentials: PdfcoCredentials
    ) -> None:
        folder = tmp_path / "scans"
        folder.mkdir()
        for name, pages, seconds in [("a.pdf", 1, 300), ("b.pdf", 2, 100)]:
            path = make_pdf(folder, name, pages)
            os.utime(path, ns=(seconds * 10**9, seconds * 10**9))

        result = merge_folder(
            str(folder),
            str(tmp_path / "out"),
            order="mtime",
            output_name_template="{folder}-{count}.pdf",
            credentials=credentials,
        )

        assert result["inputs"] == ["b.pdf", "a.pdf"]
        assert Path(result["output"]).name == "scans-2.pdf"
        spans = [(s["first_page"], s["last_page"]) for s in result["spans"]]
        assert spans == [(1, 2), (3, 3)]

    def test_same_input_and_output_rejected(
        self, inbox: Path, credentials: PdfcoCredentials
    ) -> None:
        with pytest.raises(PreflightError, match="is the input folder"):
            merge_folder(str(inbox), str(inbox), credentials=credentials)

    def test_bad_template_rejected(
        self, tmp_path: Path, inbox: Path, credentials: PdfcoCredentials
    ) -> None:
        with pytest.raises(PreflightError, match=r"\{day\} is not a placeholder"):
            merge_folder(
                str(inbox),
                str(tmp_path / "out"),
                output_name_template="m-{day}.pdf",
                credentials=credentials,
            )

    def test_bad_timezone_rejected(
        self, tmp_path: Path, inbox: Path, credentials: PdfcoCredentials
    ) -> None:
        with pytest.raises(PreflightError, match="IANA time zone name"):
            merge_folder(
                str(inbox),
                str(tmp_path / "out"),
                timezone="Mars/Olympus",
                credentials=credentials,
            )

    def test_failed_merge_writes_no_state(
        self, tmp_path: Path, credentials: PdfcoCredentials
    ) -> None:
        folder = tmp_path / "broken"
        folder.mkdir()
        make_pdf(folder, "good.pdf", 1)
        (folder / "bad.pdf").write_bytes(b"not a pdf at all")
        out = tmp_path / "out"

        with pytest.raises(PreflightError, match=r"bad\.pdf"):
            merge_folder(str(folder), str(out), credentials=credentials)

        assert read_state(state_path(out, folder, "*.pdf")) is None

    def test_folder_artifact_published(
        self, tmp_path: Path, credentials: PdfcoCredentials
    ) -> None:
        folder = tmp_path / "artifact-inbox"
        folder.mkdir()
        make_pdf(folder, "only.pdf", 2)

        result = merge_folder(
            str(folder), str(tmp_path / "out"), credentials=credentials
        )

        with get_client(sync_client=True) as client:
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["pdfco-artifact-inbox-folder"])
                )
            )
        assert artifacts
        assert result["job_id"] in str(artifacts[0].data)
        assert "only.pdf" in str(artifacts[0].data)
