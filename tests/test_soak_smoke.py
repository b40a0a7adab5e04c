"""A short run of `bench/soak.py`, checking the numbers of its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prefect.settings import PREFECT_API_URL

REPO_ROOT = Path(__file__).resolve().parents[1]
SOAK = REPO_ROOT / "bench" / "soak.py"
MERGES = 5
RUN_TIMEOUT_SECONDS = 300


def test_soak_five_merges_pass(prefect_harness: None, tmp_path: Path) -> None:
    report_path = tmp_path / "soak.json"
    command = [sys.executable, str(SOAK), "--merges", str(MERGES)]
    environment = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }

    completed = subprocess.run(
        [*command, "--json", str(report_path)],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(report_path.read_text())
    assert report["merges"] == MERGES
    assert report["valid"] == MERGES
    assert report["failed"] == []
    assert report["partial_files"] == []
    assert report["merge_submissions"] == MERGES
    assert report["duplicate_merges"] == 0
    assert report["passed"] is True
    assert f"valid outputs:          {MERGES} / {MERGES}" in completed.stdout
    assert "partial files:          0" in completed.stdout
    assert "duplicate merges:       0" in completed.stdout

    # Every injected fault except `slow` costs one retry, or ends one job
    # check that polling then repeats.
    faults = dict(report["faults_injected"])
    faults.pop("slow", None)
    retried = sum(report["retries"].values()) + report["failed_job_checks"]
    assert sum(faults.values()) > 0
    assert retried == sum(faults.values())
