"""Errors the sandbox returns to API clients as JSON bodies."""

from __future__ import annotations

from typing import Any

RATE_LIMIT_MESSAGE = (
    "Too many requests (limit by your current plan). Please try again later"
)


class ApiError(Exception):
    """Raised inside the sandbox to answer an API request with an error body.

    Args:
        status: The PDF.co status code (also the HTTP status unless errors are
            sent as HTTP 200).
        message: The message for the client; it must never contain a secret.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        """Return the documented error body."""
        return {"error": True, "status": self.status, "message": self.message}


class InputError(ApiError):
    """Raised when one input of a merge cannot be fetched, read or converted."""
