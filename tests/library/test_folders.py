"""Folder scanning, ordering, output names and the fingerprint state file."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pdfco_tasks.exceptions import PreflightError
from pdfco_tasks.folders import (
    FolderState,
    find_documents,
    fingerprint,
    natural_sort_key,
    read_state,
    render_output_name,
    resolve_timezone,
    state_path,
    write_state,
)

MOMENT = datetime(2024, 5, 31, 23, 30, 5, tzinfo=ZoneInfo("UTC"))


def touch(folder: Path, name: str, content: bytes = b"%PDF-1.4\n") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def set_mtime(path: Path, seconds: int) -> None:
    os.utime(path, ns=(seconds * 10**9, seconds * 10**9))


class TestNaturalSort:
    def test_numbers_sort_by_value(self) -> None:
        names = ["page10.pdf", "page2.pdf", "page1.pdf"]

        assert sorted(names, key=natural_sort_key) == [
            "page1.pdf",
            "page2.pdf",
            "page10.pdf",
        ]

    def test_case_is_ignored(self) -> None:
        names = ["b.pdf", "A.pdf", "c.pdf"]

        assert sorted(names, key=natural_sort_key) == ["A.pdf", "b.pdf", "c.pdf"]

    def test_leading_zeros_tie_break(self) -> None:
        names = ["2.pdf", "02.pdf", "10.pdf", "1.pdf"]

        assert sorted(names, key=natural_sort_key) == [
            "1.pdf",
            "02.pdf",
            "2.pdf",
            "10.pdf",
        ]

    def test_mixed_text_and_digits(self) -> None:
        names = ["x10y2.pdf", "x10y10.pdf", "x9.pdf", "notes.pdf"]

        assert sorted(names, key=natural_sort_key) == [
            "notes.pdf",
            "x9.pdf",
            "x10y2.pdf",
            "x10y10.pdf",
        ]


class TestFindDocuments:
    def test_name_order_is_natural(self, tmp_path: Path) -> None:
        for name in ["10.pdf", "2.pdf", "1.pdf"]:
            touch(tmp_path, name)

        files = find_documents(tmp_path, "*.pdf", "name")

        assert [f.name for f in files] == ["1.pdf", "2.pdf", "10.pdf"]

    def test_mtime_order_oldest_first(self, tmp_path: Path) -> None:
        set_mtime(touch(tmp_path, "a.pdf"), 3000)
        set_mtime(touch(tmp_path, "b.pdf"), 1000)
        set_mtime(touch(tmp_path, "c.pdf"), 2000)

        files = find_documents(tmp_path, "*.pdf", "mtime")

        assert [f.name for f in files] == ["b.pdf", "c.pdf", "a.pdf"]

    def test_hidden_and_other_files_skipped(self, tmp_path: Path) -> None:
        touch(tmp_path, "keep.pdf")
        touch(tmp_path, ".hidden.pdf")
        touch(tmp_path, "notes.txt")
        (tmp_path / "folder.pdf").mkdir()

        files = find_documents(tmp_path, "*.pdf")

        assert [f.name for f in files] == ["keep.pdf"]

    def test_recursive_pattern_skips_output_dir(self, tmp_path: Path) -> None:
        touch(tmp_path, "top.pdf")
        touch(tmp_path, "sub/inner.pdf")
        touch(tmp_path, "out/merged.pdf")
        touch(tmp_path, ".cache/old.pdf")

        files = find_documents(tmp_path, "**/*.pdf", exclude_dir=tmp_path / "out")

        assert [f.name for f in files] == ["sub/inner.pdf", "top.pdf"]

    def test_sizes_and_paths_reported(self, tmp_path: Path) -> None:
        path = touch(tmp_path, "one.pdf", b"12345")

        files = find_documents(tmp_path)

        assert files[0].path == str(path)
        assert files[0].size == 5

    def test_empty_folder_gives_no_files(self, tmp_path: Path) -> None:
        assert find_documents(tmp_path) == []

    def test_missing_folder_rejected(self, tmp_path: Path) -> None:
        with pytest.raises(PreflightError, match=r"does not exist\. Check input_dir"):
            find_documents(tmp_path / "absent")

    def test_file_as_folder_rejected(self, tmp_path: Path) -> None:
        path = touch(tmp_path, "file.pdf")

        with pytest.raises(PreflightError, match="input_dir must be a folder"):
            find_documents(path)

    @pytest.mark.parametrize(
        "pattern",
        [
            pytest.param("/etc/*.pdf", id="absolute"),
            pytest.param("../*.pdf", id="parent"),
            pytest.param("", id="empty"),
        ],
    )
    def test_bad_pattern_rejected(self, tmp_path: Path, pattern: str) -> None:
        with pytest.raises(PreflightError, match="pattern must be a glob relative"):
            find_documents(tmp_path, pattern)

    def test_unknown_order_rejected(self, tmp_path: Path) -> None:
        with pytest.raises(PreflightError, match="order must be 'name' or 'mtime'"):
            find_documents(tmp_path, "*.pdf", "size")  # type: ignore[arg-type]


class TestFingerprint:
    def test_same_inputs_same_fingerprint(self, tmp_path: Path) -> None:
        touch(tmp_path, "a.pdf", b"one")
        touch(tmp_path, "b.pdf", b"two")
        files = find_documents(tmp_path)

        assert fingerprint(files, {}) == fingerprint(find_documents(tmp_path), {})

    def test_touch_keeps_fingerprint(self, tmp_path: Path) -> None:
        path = touch(tmp_path, "a.pdf", b"one")
        before = fingerprint(find_documents(tmp_path), {})
        set_mtime(path, 5000)

        assert fingerprint(find_documents(tmp_path), {}) == before

    def test_content_change_changes_fingerprint(self, tmp_path: Path) -> None:
        path = touch(tmp_path, "a.pdf", b"one")
        before = fingerprint(find_documents(tmp_path), {})
        path.write_bytes(b"uno")

        assert fingerprint(find_documents(tmp_path), {}) != before

    def test_rename_changes_fingerprint(self, tmp_path: Path) -> None:
        path = touch(tmp_path, "a.pdf", b"one")
        before = fingerprint(find_documents(tmp_path), {})
        path.rename(tmp_path / "b.pdf")

        assert fingerprint(find_documents(tmp_path), {}) != before

    def test_order_changes_fingerprint(self, tmp_path: Path) -> None:
        touch(tmp_path, "a.pdf", b"one")
        touch(tmp_path, "b.pdf", b"two")
        files = find_documents(tmp_path)

        assert fingerprint(files, {}) != fingerprint(list(reversed(files)), {})

    def test_options_change_fingerprint(self, tmp_path: Path) -> None:
        touch(tmp_path, "a.pdf", b"one")
        files = find_documents(tmp_path)

        assert fingerprint(files, {"bookmarks": True}) != fingerprint(
            files, {"bookmarks": False}
        )


class TestOutputName:
    def test_date_placeholder(self) -> None:
        assert render_output_name("merged-{date}.pdf", MOMENT, 3, "inbox") == (
            "merged-2024-05-31.pdf"
        )

    def test_every_placeholder(self) -> None:
        name = render_output_name(
            "{folder}-{datetime}-{time}-{count}.pdf", MOMENT, 3, "inbox"
        )

        assert name == "inbox-2024-05-31T233005-233005-3.pdf"

    def test_timezone_moves_date(self) -> None:
        berlin = MOMENT.astimezone(resolve_timezone("Europe/Berlin"))

        assert render_output_name("m-{date}.pdf", berlin, 1, "x") == "m-2024-06-01.pdf"

    def test_unknown_placeholder_rejected(self) -> None:
        with pytest.raises(PreflightError, match=r"\{day\} is not a placeholder"):
            render_output_name("merged-{day}.pdf", MOMENT, 1, "x")

    def test_attribute_access_rejected(self) -> None:
        with pytest.raises(PreflightError, match="is not a placeholder"):
            render_output_name("merged-{date.year}.pdf", MOMENT, 1, "x")

    def test_path_separator_rejected(self) -> None:
        with pytest.raises(PreflightError, match="must give a file name, not a path"):
            render_output_name("sub/merged-{date}.pdf", MOMENT, 1, "x")

    def test_missing_pdf_suffix_rejected(self) -> None:
        with pytest.raises(PreflightError, match=r"must end in \.pdf"):
            render_output_name("merged-{date}.txt", MOMENT, 1, "x")

    def test_unbalanced_brace_rejected(self) -> None:
        with pytest.raises(PreflightError, match="not a valid template"):
            render_output_name("merged-{date.pdf", MOMENT, 1, "x")

    def test_unknown_timezone_rejected(self) -> None:
        with pytest.raises(PreflightError, match="IANA time zone name"):
            resolve_timezone("Mars/Olympus")


class TestState:
    def test_state_round_trip(self, tmp_path: Path) -> None:
        path = state_path(tmp_path / "out", tmp_path / "in", "*.pdf")
        state = FolderState(
            fingerprint="abc",
            output=str(tmp_path / "out" / "m.pdf"),
            job_id="job-1",
            page_count=7,
            merged_at="2024-05-31T23:30:05+00:00",
        )

        write_state(path, state)

        assert read_state(path) == state
        assert [p.name for p in path.parent.iterdir()] == [path.name]

    def test_state_path_differs_per_source(self, tmp_path: Path) -> None:
        first = state_path(tmp_path, tmp_path / "a", "*.pdf")
        second = state_path(tmp_path, tmp_path / "b", "*.pdf")
        third = state_path(tmp_path, tmp_path / "a", "*.png")

        assert len({first, second, third}) == 3
        assert first.name.startswith(".pdfco-merge-folder-")

    def test_missing_state_reads_none(self, tmp_path: Path) -> None:
        assert read_state(tmp_path / "absent.json") is None

    def test_corrupt_state_reads_none(self, tmp_path: Path) -> None:
        path = tmp_path / "state.json"
        path.write_text('{"fingerprint": "abc"', encoding="utf-8")

        assert read_state(path) is None
