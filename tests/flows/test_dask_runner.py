"""merge_batches on prefect-dask's task runner with a local two-worker cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from pypdf import PdfReader

from flows.merge_batches import merge_batches
from pdfco_tasks.credentials import PdfcoCredentials
from tests.factories import make_pdf

prefect_dask = pytest.importorskip("prefect_dask", reason="install the dask extra")


def test_batches_on_local_dask_cluster(
    tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL

    from pdfco_tasks.sandbox import Sandbox

    # Dask workers are separate processes that inherit the environment when the
    # cluster starts, so they must find the test's Prefect API there.
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    batches = [
        {
            "sources": [
                str(make_pdf(tmp_path, f"set{index}-a.pdf", 1)),
                str(make_pdf(tmp_path, f"set{index}-b.pdf", index + 1)),
            ],
            "output": str(tmp_path / "out" / f"set{index}.pdf"),
        }
        for index in range(4)
    ]
    runner = prefect_dask.DaskTaskRunner(
        cluster_kwargs={
            "n_workers": 2,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )

    with Sandbox(api_keys=("dask-key",)) as sandbox:
        credentials = PdfcoCredentials(
            api_key=SecretStr("dask-key"), base_url=sandbox.base_url
        )
        summary = merge_batches.with_options(task_runner=runner)(
            batches, credentials=credentials, requests_per_second=None
        )
        submissions = sandbox.counters()["merge_submissions_total"]

    assert summary["completed"] == 4
    assert summary["failed"] == 0
    assert submissions == 4
    for index in range(4):
        output = tmp_path / "out" / f"set{index}.pdf"
        assert len(PdfReader(output).pages) == 1 + index + 1
    assert summary["pages"] == sum(1 + index + 1 for index in range(4))
