"""Per-key credit balances."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from pdfco_tasks.sandbox.counters import Counters
from pdfco_tasks.sandbox.errors import ApiError

PRESIGNED_URL_COST = 7
FILE_UPLOAD_COST = 11
BASE64_UPLOAD_COST = 21
URL_UPLOAD_COST = 11
JOB_CHECK_COST = 2
PDF_INFO_COST = 1
MERGE_COST_PER_PAGE = 1
MERGE2_COST_PER_PAGE = 2


class InsufficientCredits(ApiError):
    """Raised when a key's balance cannot pay for a request."""

    def __init__(self) -> None:
        super().__init__(402, "Not enough credits")


class CreditLedger:
    """Balances by API key; every charge and refund is also counted.

    Args:
        keys: The accepted API keys.
        credits: Starting balance of every key.
        counters: Where the charged and refunded totals go.
    """

    def __init__(self, keys: Iterable[str], credits: int, counters: Counters) -> None:
        self._balances = {key: int(credits) for key in keys}
        self._lock = threading.Lock()
        self._counters = counters

    def knows(self, key: str) -> bool:
        """Return True if `key` is an accepted API key."""
        return key in self._balances

    def balance(self, key: str) -> int:
        """Return the remaining credits of `key`."""
        with self._lock:
            return self._balances[key]

    def require(self, key: str, amount: int) -> None:
        """Raise `InsufficientCredits` if the balance of `key` is below `amount`."""
        with self._lock:
            if self._balances[key] < amount:
                raise InsufficientCredits()

    def charge(self, key: str, amount: int) -> int:
        """Take `amount` credits from `key` and return the new balance.

        Raises:
            InsufficientCredits: If the balance is smaller than `amount`; nothing
                is taken then.
        """
        with self._lock:
            if self._balances[key] < amount:
                raise InsufficientCredits()
            self._balances[key] -= amount
            self._counters.add_credits("charged", amount)
            return self._balances[key]

    def charge_at_most(self, key: str, amount: int) -> int:
        """Take `amount` credits, or what is left if less; return what was taken.

        Used for the pages of an async job that already succeeded, which cannot
        be refused any more.
        """
        with self._lock:
            taken = min(amount, max(self._balances[key], 0))
            self._balances[key] -= taken
            self._counters.add_credits("charged", taken)
            return taken

    def refund(self, key: str, amount: int) -> None:
        """Give `amount` credits back to `key`."""
        with self._lock:
            self._balances[key] += amount
            self._counters.add_credits("refunded", amount)
