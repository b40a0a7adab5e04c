"""Flow tests run on the real Prefect engine against a temporary API server."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _prefect(prefect_harness: None) -> None:
    """Start the session's Prefect server before any flow test."""
