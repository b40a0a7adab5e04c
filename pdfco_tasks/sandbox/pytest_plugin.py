"""Pytest fixtures that run the PDF.co sandbox in-process.

`pdfco_sandbox` gives each test a fresh sandbox with the key `test-key`;
`pdfco_sandbox_factory` starts sandboxes with any `Sandbox` arguments and stops
them all at teardown. The server modules are imported inside the fixtures, so
loading this plugin costs nothing in test runs that do not use them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pdfco_tasks.sandbox.server import Sandbox

TEST_KEY = "test-key"


@pytest.fixture
def pdfco_sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Return a callable that starts a `Sandbox` with the keyword arguments given."""
    from pdfco_tasks.sandbox.server import Sandbox

    started: list[Sandbox] = []

    def start(**kwargs: Any) -> Sandbox:
        kwargs.setdefault("api_keys", (TEST_KEY,))
        sandbox = Sandbox(**kwargs).start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in reversed(started):
        sandbox.close()


@pytest.fixture
def pdfco_sandbox(pdfco_sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """Return a fresh, running sandbox that accepts the API key `test-key`."""
    return pdfco_sandbox_factory()
