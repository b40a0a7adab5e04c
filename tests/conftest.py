"""Settings shared by every test: Prefect runs offline and quietly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Prefect reads these when it is first imported, so they are set before any test
# module imports it.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_COLORS", "false")
os.environ["PREFECT_TEST_MODE"] = "1"

import pytest


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Run a temporary Prefect API server, with its own database, for the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give each test its own job store, so no test resumes another's job."""
    directory = tmp_path / "state"
    monkeypatch.setenv("PDFCO_TASKS_HOME", str(directory))
    return directory
