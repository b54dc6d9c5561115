"""``digest retry``: deliveries that failed (or wait to retry) back to pending, for the next pass."""

from __future__ import annotations

from datetime import datetime

from digest.errors import UsageError
from digest.store import Ledger


def requeue(ledger: Ledger, delivery_id: int | None, *, at: datetime) -> int:
    """Failed (or waiting) deliveries back to pending, one or (None) all; how many. An unknown id is a usage error."""
    if delivery_id is not None and ledger.get(delivery_id) is None:
        raise UsageError(f"no delivery #{delivery_id}; 'digest deliveries' lists them")
    return ledger.requeue(delivery_id, at=at)
