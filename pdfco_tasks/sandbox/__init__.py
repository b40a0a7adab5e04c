"""A local stand-in for the PDF.co Web API, served over real HTTP.

`Sandbox` runs it in-process; the `pdfco-sandbox` command runs it as a service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pdfco_tasks.sandbox.server import Sandbox

__all__ = ["Sandbox"]


def __getattr__(name: str) -> Any:
    # Importing the server pulls in uvicorn, Starlette, pypdf and Pillow, so it
    # waits until someone asks for it; the pytest plugin imports this package.
    if name == "Sandbox":
        from pdfco_tasks.sandbox.server import Sandbox

        return Sandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
