"""Settings validation and the output checks and lock of a merge."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from pdfco_tasks.exceptions import ConfigurationError, PreflightError
from pdfco_tasks.inspection import inspect_sources
from pdfco_tasks.outputs import check_output, lock_output, remove_leftovers
from pdfco_tasks.settings import PdfcoSettings


class TestSettings:
    def test_key_newline_stripped(self) -> None:
        settings = PdfcoSettings(api_key="key-123\n", base_url="http://h:1/v1")

        assert settings.api_key == "key-123"

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param("K2\nX-Injected: yes", id="header-injection"),
            pytest.param("ключ", id="non-ascii"),
            pytest.param("two words", id="space"),
        ],
    )
    def test_unsafe_key_rejected_unquoted(self, key: str) -> None:
        with pytest.raises(ConfigurationError, match="contains spaces") as caught:
            PdfcoSettings(api_key=key, base_url="http://h:1/v1")

        assert key not in str(caught.value)
        assert key.strip() not in repr(caught.value.args)

    @pytest.mark.parametrize(
        ("base_url", "message"),
        [
            ("ftp://h/v1", "must start with http:// or https://"),
            ("http://127.0.0.1:99999/v1", "invalid port"),
            ("http://127.0.0.1 :1/v1", "no valid host"),
            ("http:///v1", "no valid host"),
            ("http://127.0.0.1:8080", "ending in /v1"),
        ],
    )
    def test_bad_base_url_rejected(self, base_url: str, message: str) -> None:
        with pytest.raises(ConfigurationError, match=message):
            PdfcoSettings(api_key="k", base_url=base_url)


class TestCheckOutput:
    def test_existing_output_needs_overwrite(self, tmp_path: Path) -> None:
        output = tmp_path / "merged.pdf"
        output.write_bytes(b"old")

        with pytest.raises(PreflightError, match="already exists"):
            check_output(output, overwrite=False)
        check_output(output, overwrite=True)

    @pytest.mark.parametrize(
        ("name", "reason"),
        [
            pytest.param("merged.txt", "ending in .pdf", id="suffix"),
            pytest.param(".pdf", "ending in .pdf", id="bare-suffix"),
            pytest.param("x" * 300 + ".pdf", "cannot be written", id="too-long"),
        ],
    )
    def test_bad_output_name(self, tmp_path: Path, name: str, reason: str) -> None:
        with pytest.raises(PreflightError, match=reason):
            check_output(tmp_path / name, overwrite=False)

    def test_output_under_file_rejected(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file.pdf"
        blocker.write_bytes(b"x")

        with pytest.raises(PreflightError, match="cannot be written"):
            check_output(blocker / "merged.pdf", overwrite=False)

    def test_directory_output_rejected(self, tmp_path: Path) -> None:
        (tmp_path / "dir.pdf").mkdir()

        with pytest.raises(PreflightError, match="is a directory"):
            check_output(tmp_path / "dir.pdf", overwrite=True)

    def test_missing_directory_created(self, tmp_path: Path) -> None:
        output = tmp_path / "a" / "b" / "merged.pdf"

        check_output(output, overwrite=False)

        assert output.parent.is_dir()
        assert list(output.parent.iterdir()) == []


def _try_lock(output: str, state_dir: str, queue: multiprocessing.Queue[str]) -> None:
    try:
        with lock_output(Path(output), Path(state_dir)):
            queue.put("locked")
    except PreflightError as exc:
        queue.put(exc.message)


class TestLockOutput:
    def test_second_process_rejected(self, tmp_path: Path) -> None:
        output = tmp_path / "merged.pdf"
        queue: multiprocessing.Queue[str] = multiprocessing.Queue()

        with lock_output(output, tmp_path / "state"):
            process = multiprocessing.Process(
                target=_try_lock, args=(str(output), str(tmp_path / "state"), queue)
            )
            process.start()
            process.join(timeout=60)
        message = queue.get(timeout=10)

        assert message == (
            f"Output {output} is being written by another merge; wait for it to end."
        )

    def test_lock_released_after_use(self, tmp_path: Path) -> None:
        output = tmp_path / "merged.pdf"
        with lock_output(output, tmp_path / "state"):
            pass

        with lock_output(output, tmp_path / "state"):
            assert not output.exists()

    def test_unusable_state_dir(self, tmp_path: Path) -> None:
        blocker = tmp_path / "state"
        blocker.write_text("a file, not a directory")

        with (
            pytest.raises(ConfigurationError, match="set PDFCO_TASKS_HOME"),
            lock_output(tmp_path / "m.pdf", blocker),
        ):
            pass


def test_leftovers_removed_others_kept(tmp_path: Path) -> None:
    output = tmp_path / "merged.pdf"
    leftovers = [
        ".merged.pdf.download",
        "..merged.pdf.download.k2j3.part",
        ".merged.part-001.pdf",
        "..merged.part-001.pdf.download",
        ".merged.pdf.x1.probe",
    ]
    for name in leftovers:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".merged.pdf.notes").write_bytes(b"keep")
    (tmp_path / "other.pdf").write_bytes(b"keep")

    removed = remove_leftovers(output)

    assert sorted(path.name for path in removed) == sorted(leftovers)
    assert sorted(os.listdir(tmp_path)) == [".merged.pdf.notes", "other.pdf"]


def test_oversized_file_rejected_before_parsing(tmp_path: Path) -> None:
    huge = tmp_path / "huge.pdf"
    with huge.open("wb") as file:
        file.truncate(3 * 1024**3)

    with pytest.raises(PreflightError) as caught:
        inspect_sources([str(huge)])

    assert caught.value.problems == [
        (
            str(huge),
            "3,221,225,472 bytes is over the 2,147,483,648-byte limit of one "
            "PDF.co merge, even alone; split the file first",
        )
    ]
