"""Shared sandbox for the tests of one module, and an API client for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pdfco_tasks.sandbox import Sandbox
from tests.sandbox.helpers import Api

KEY = "sandbox-test-key"
OTHER_KEY = "sandbox-other-key"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """Run one sandbox for all tests of a module that leave its clock alone."""
    with Sandbox(api_keys=(KEY, OTHER_KEY)) as running:
        yield running


@pytest.fixture
def api(sandbox: Sandbox) -> Api:
    """Return a client of the module's sandbox that sends `KEY`."""
    return Api(sandbox.base_url, KEY)
