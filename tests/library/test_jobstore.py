"""Tests of the job store: keys, lifetimes, pruning and concurrent writers."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest

from pdfco_tasks.exceptions import ConfigurationError
from pdfco_tasks.jobstore import (
    JobStore,
    default_store_path,
    key_fingerprint,
    merge_key,
    url_hash,
)
from pdfco_tasks.models import MergeJob, UploadedFile
from pdfco_tasks.settings import PdfcoSettings

BASE = "http://127.0.0.1:9/v1"
NOW = 1_700_000_000.0


def make_job(job_id: str = "JOB1", expires_at: float = NOW + 3600) -> MergeJob:
    return MergeJob(
        job_id=job_id,
        result_url=f"http://127.0.0.1:9/files/{job_id}/out.pdf?sig=secret",
        name="out.pdf",
        submitted_at=NOW,
        expires_at=expires_at,
        credits=3,
        remaining_credits=97,
    )


def make_upload(sha: str = "ab" * 32, uploaded_at: float = NOW) -> UploadedFile:
    return UploadedFile(
        source="/data/a.pdf",
        url="http://127.0.0.1:9/files/a.pdf?sig=secret",
        sha256=sha,
        uploaded_at=uploaded_at,
        expires_at=uploaded_at + 3600,
        credits=7,
    )


class TestMergeKey:
    def test_key_depends_on_order_options_and_account(self) -> None:
        options = {"name": "out.pdf", "expiration": 60, "endpoint": "merge2"}
        key = merge_key(BASE, ["a", "b"], options)

        assert key == merge_key(BASE + "/", ["a", "b"], dict(reversed(options.items())))
        assert key != merge_key(BASE, ["b", "a"], options)
        assert key != merge_key(BASE, ["a", "b"], {**options, "name": "other.pdf"})
        assert key != merge_key("http://127.0.0.1:8/v1", ["a", "b"], options)
        assert key != merge_key(BASE, ["a", "b"], options, account="other")

    def test_settings_scope_key_by_account(self) -> None:
        first = PdfcoSettings(api_key="KEY-ONE", base_url=BASE)
        second = PdfcoSettings(api_key="KEY-TWO", base_url=BASE)
        options = {"name": "out.pdf"}

        assert merge_key(first, ["a"], options) == merge_key(
            BASE, ["a"], options, account=key_fingerprint("KEY-ONE")
        )
        assert merge_key(first, ["a"], options) != merge_key(second, ["a"], options)

    def test_url_inputs_hash_their_text(self) -> None:
        assert url_hash("https://example.com/a.pdf") != url_hash(
            "https://example.com/b.pdf"
        )
        assert len(url_hash("x")) == 64


class TestDefaultStorePath:
    def test_home_variable_wins(self, tmp_path: Path) -> None:
        path = default_store_path({"PDFCO_TASKS_HOME": str(tmp_path)})

        assert path == tmp_path / "jobs.json"

    def test_falls_back_to_user_cache(self) -> None:
        path = default_store_path({})

        assert path == Path.home() / ".cache" / "pdfco-tasks" / "jobs.json"


class TestJobs:
    def test_saved_job_found_until_margin(self, tmp_path: Path) -> None:
        store = JobStore(tmp_path / "jobs.json", margin=300, clock=lambda: NOW)
        store.save_job("k", make_job())

        assert store.find_job("k", NOW) == make_job()
        assert store.find_job("k", NOW + 3600 - 301) == make_job()
        assert store.find_job("k", NOW + 3600 - 300) is None
        assert store.find_job("other", NOW) is None

    def test_forget_job_removes_entry(self, tmp_path: Path) -> None:
        store = JobStore(tmp_path / "jobs.json", clock=lambda: NOW)
        store.save_job("k", make_job())

        store.forget_job("k")

        assert store.find_job("k", NOW) is None

    def test_forget_job_id_removes_every_key(self, tmp_path: Path) -> None:
        store = JobStore(tmp_path / "jobs.json", clock=lambda: NOW)
        store.save_job("k1", make_job("JOB1"))
        store.save_job("k2", make_job("JOB1"))
        store.save_job("k3", make_job("JOB2"))

        store.forget_job_id("JOB1")

        assert store.find_job("k1", NOW) is None
        assert store.find_job("k2", NOW) is None
        assert store.find_job("k3", NOW) == make_job("JOB2")

    def test_expired_entries_pruned_on_write(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.json"
        clock = [NOW]
        store = JobStore(path, clock=lambda: clock[0])
        store.save_job("old", make_job("OLD", expires_at=NOW + 60))
        store.save_upload(BASE, make_upload())

        clock[0] = NOW + 3601
        store.save_job("new", make_job("NEW", expires_at=NOW + 7200))

        data = json.loads(path.read_text())
        assert set(data["jobs"]) == {"new"}
        assert data["uploads"] == {}

    def test_file_has_no_key_and_owner_only_mode(self, tmp_path: Path) -> None:
        path = tmp_path / "state" / "jobs.json"
        settings = PdfcoSettings(api_key="SECRET-KEY-123", base_url=BASE)
        store = JobStore(path, clock=lambda: NOW)

        store.save_job(merge_key(settings, ["a"], {}), make_job())

        assert "SECRET-KEY-123" not in path.read_text()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert sorted(p.name for p in path.parent.iterdir()) == [
            "jobs.json",
            "jobs.json.lock",
        ]

    def test_corrupt_file_treated_as_empty(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = tmp_path / "jobs.json"
        path.write_text("{not json")
        store = JobStore(path, clock=lambda: NOW)

        assert store.find_job("k", NOW) is None
        assert "is not valid JSON" in caplog.text

        store.save_job("k", make_job())
        assert store.find_job("k", NOW) == make_job()


class TestUploads:
    def test_upload_found_within_lifetime_minus_margin(self, tmp_path: Path) -> None:
        store = JobStore(tmp_path / "jobs.json", margin=300, clock=lambda: NOW)
        upload = make_upload()
        store.save_upload(BASE, upload, account="acct")

        assert store.find_upload(BASE, upload.sha256, NOW + 3299, account="acct") == (
            upload
        )
        assert store.find_upload(BASE, upload.sha256, NOW + 3300, account="acct") is (
            None
        )

    def test_upload_scoped_by_base_url_and_account(self, tmp_path: Path) -> None:
        store = JobStore(tmp_path / "jobs.json", clock=lambda: NOW)
        upload = make_upload()
        store.save_upload(BASE, upload, account="acct")

        assert store.find_upload(BASE, upload.sha256, NOW, account="other") is None
        assert store.find_upload("http://127.0.0.1:8/v1", upload.sha256, NOW) is None

    def test_forget_upload_by_url(self, tmp_path: Path) -> None:
        store = JobStore(tmp_path / "jobs.json", clock=lambda: NOW)
        upload = make_upload()
        store.save_upload(BASE, upload)

        store.forget_upload(upload.url)

        assert store.find_upload(BASE, upload.sha256, NOW) is None

    def test_upload_without_digest_rejected(self, tmp_path: Path) -> None:
        store = JobStore(tmp_path / "jobs.json", clock=lambda: NOW)

        with pytest.raises(ValueError, match=r"/data/a\.pdf has no sha256"):
            store.save_upload(BASE, make_upload(sha=""))


class TestConcurrency:
    def test_threads_keep_every_entry(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.json"
        barrier = threading.Barrier(8)

        def writer(worker: int) -> None:
            store = JobStore(path, clock=lambda: NOW)
            barrier.wait(timeout=30)
            for index in range(10):
                store.save_job(f"{worker}-{index}", make_job(f"J{worker}x{index}"))
                store.save_upload(BASE, make_upload(sha=f"{worker:02d}{index:062d}"))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        data = json.loads(path.read_text())
        assert len(data["jobs"]) == 80
        assert len(data["uploads"]) == 80
        assert not list(tmp_path.glob(".jobs.json.*.tmp"))

    def test_processes_keep_every_entry(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.json"
        context = multiprocessing.get_context("spawn")
        processes = [
            context.Process(target=_write_jobs, args=(str(path), worker))
            for worker in range(4)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)

        assert [process.exitcode for process in processes] == [0, 0, 0, 0]
        data = json.loads(path.read_text())
        assert len(data["jobs"]) == 4 * 15


def _write_jobs(path: str, worker: int) -> None:
    store = JobStore(Path(path), clock=lambda: NOW)
    for index in range(15):
        store.save_job(f"p{worker}-{index}", make_job(f"P{worker}x{index}"))


# 2023-11-14T22:13:20Z, the UTC time of NOW.
CORRUPT_SUFFIX = ".corrupt-20231114T221320.000000Z"
NOT_WRITABLE_BY_ROOT = pytest.mark.skipif(
    os.geteuid() == 0, reason="root ignores directory permissions"
)


class TestDamagedFile:
    """A damaged jobs.json is renamed aside with a warning, never silently lost."""

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            pytest.param(b"\xff\xfe\x00garbage\x80", "is not UTF-8 text", id="bytes"),
            pytest.param(
                b"{not json", "is not valid JSON: Expecting property name", id="text"
            ),
            pytest.param(b"[1, 2]", "is not a JSON object", id="array"),
            pytest.param(
                b'{"version": 99, "jobs": {}}',
                "has format version 99, not 1",
                id="version",
            ),
            pytest.param(
                b'{"version": 1, "jobs": [], "uploads": {}}',
                "has a 'jobs' entry that is not an object",
                id="jobs-list",
            ),
            pytest.param(
                b"[" * 100_000, "is not valid JSON: maximum recursion", id="deep"
            ),
        ],
    )
    def test_damaged_file_moved_aside(
        self,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
        content: bytes,
        problem: str,
    ) -> None:
        path = tmp_path / "jobs.json"
        path.write_bytes(content)
        store = JobStore(path, clock=lambda: NOW)

        with caplog.at_level(logging.WARNING, logger="pdfco_tasks"):
            found = store.find_job("k", NOW)

        aside = tmp_path / ("jobs.json" + CORRUPT_SUFFIX)
        assert found is None
        assert not path.exists()
        assert aside.read_bytes() == content
        assert len(caplog.records) == 1
        message = caplog.records[0].getMessage()
        assert caplog.records[0].levelno == logging.WARNING
        assert message.startswith(f"job store {path} {problem}")
        assert message.endswith(f"moved it to {aside} and started an empty store")

    def test_store_usable_after_move(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.json"
        path.write_text("{not json")
        store = JobStore(path, clock=lambda: NOW)

        store.save_job("k", make_job())

        assert store.find_job("k", NOW) == make_job()
        assert (tmp_path / ("jobs.json" + CORRUPT_SUFFIX)).read_text() == "{not json"

    def test_directory_in_place_of_file(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = tmp_path / "jobs.json"
        (path / "inner").mkdir(parents=True)
        store = JobStore(path, clock=lambda: NOW)

        with caplog.at_level(logging.WARNING, logger="pdfco_tasks"):
            store.save_upload(BASE, make_upload())

        aside = tmp_path / ("jobs.json" + CORRUPT_SUFFIX)
        assert (aside / "inner").is_dir()
        assert path.is_file()
        assert store.find_upload(BASE, "ab" * 32, NOW) == make_upload()
        assert f"job store {path} cannot be read: Is a directory" in caplog.text


class TestUnusableHome:
    """An unusable store location raises ConfigurationError naming the path."""

    def test_home_is_a_file(self, tmp_path: Path) -> None:
        home = tmp_path / "home"
        home.write_text("not a directory")
        store = JobStore(default_store_path({"PDFCO_TASKS_HOME": str(home)}))

        with pytest.raises(ConfigurationError) as caught:
            store.save_job("k", make_job())

        message = str(caught.value)
        assert message.startswith(f"Cannot use the job store {home}/jobs.json: ")
        assert "File exists" in message
        assert "Set PDFCO_TASKS_HOME to a writable directory" in message
        assert caught.value.context == {"path": f"{home}/jobs.json"}

    def test_home_under_a_file(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        store = JobStore(blocker / "home" / "jobs.json")

        with pytest.raises(ConfigurationError, match="Not a directory") as caught:
            store.find_job("k", NOW)

        assert f"Cannot use the job store {blocker}/home/jobs.json" in str(caught.value)

    def test_home_is_dev_null(self) -> None:
        store = JobStore(Path("/dev/null") / "jobs.json")

        with pytest.raises(
            ConfigurationError,
            match=r"^Cannot use the job store /dev/null/jobs\.json: ",
        ):
            store.find_upload(BASE, "ab" * 32, NOW)

    @NOT_WRITABLE_BY_ROOT
    def test_home_not_writable(self, tmp_path: Path) -> None:
        home = tmp_path / "locked"
        home.mkdir()
        home.chmod(0o500)
        store = JobStore(home / "jobs.json")

        try:
            with pytest.raises(ConfigurationError, match="Permission denied"):
                store.save_job("k", make_job())
        finally:
            home.chmod(0o700)

    @pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs")
    def test_home_in_sysfs_not_writable(self) -> None:
        # sysfs rejects new files even for root, unlike a chmod-ed directory.
        store = JobStore(Path("/sys/kernel/jobs.json"))

        with pytest.raises(ConfigurationError) as caught:
            store.check()

        message = str(caught.value)
        assert "Cannot use the job store /sys/kernel/jobs.json: " in message
        assert "(/sys/kernel/jobs.json.lock)" in message

    def test_check_creates_directory_and_lock(self, tmp_path: Path) -> None:
        path = tmp_path / "new" / "state" / "jobs.json"

        JobStore(path).check()

        assert sorted(p.name for p in path.parent.iterdir()) == ["jobs.json.lock"]

    def test_check_rejects_file_as_home(self, tmp_path: Path) -> None:
        home = tmp_path / "home"
        home.write_text("x")

        with pytest.raises(ConfigurationError, match="File exists") as caught:
            JobStore(home / "jobs.json").check()

        assert "Set PDFCO_TASKS_HOME to a writable directory" in str(caught.value)

    def test_check_rejects_lock_directory(self, tmp_path: Path) -> None:
        (tmp_path / "jobs.json.lock").mkdir()

        with pytest.raises(ConfigurationError, match="Is a directory") as caught:
            JobStore(tmp_path / "jobs.json").check()

        assert f"({tmp_path}/jobs.json.lock)" in str(caught.value)
