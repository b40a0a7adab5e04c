"""Tests of the job store: keys, lifetimes, pruning and concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import stat
import threading
from pathlib import Path

import pytest

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
