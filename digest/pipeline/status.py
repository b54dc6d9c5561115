"""How the service stands: what the database holds, the last fetch, who is due when, what waits or failed.

One answer for ``digest status`` and the web side's ``/healthz``; the brief
one (``brief=True``) is what a health probe needs, with no subscriber read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from digest import cadence
from digest.models import Delivery, FetchRecord, StoreStatus, Subscriber
from digest.pipeline.subscribers import stored_profile
from digest.store import Store

WAITING = ("pending", "sending", "retry")
LAST_FAILURES = 5


class NextRun(NamedTuple):
    """A subscriber and the next time their schedule fires, in their zone."""

    subscriber: Subscriber
    at: datetime


@dataclass(frozen=True, slots=True)
class Status:
    """The service as it stands at ``now``."""

    now: datetime
    store: StoreStatus
    failed_last_day: int  # deliveries that failed for good in the last 24 hours
    last_fetch: FetchRecord | None = None
    next_runs: list[NextRun] = field(default_factory=list)
    waiting: list[Delivery] = field(default_factory=list)  # pending, sending or waiting to retry
    failures: list[Delivery] = field(default_factory=list)  # the last few that failed for good

    @property
    def last_ingest_age_s(self) -> int | None:
        last = self.store.last_dump
        return round((self.now - last.ingested_at).total_seconds()) if last else None


def status(store: Store, *, now: datetime, brief: bool = False) -> Status:
    """How things stand; ``brief``: only the counts, the last ingest and the failures of the last day."""
    counts = store.papers.status()
    failed = store.ledger.failed_since(now - timedelta(days=1))
    if brief:
        return Status(now, counts, failed)
    return Status(
        now,
        counts,
        failed,
        last_fetch=store.fetches.last(),
        next_runs=[NextRun(s, cadence.next_fire(stored_profile(s), now)) for s in store.subscribers.all()],
        waiting=store.ledger.deliveries(states=WAITING),
        failures=store.ledger.deliveries(states=("failed",), limit=LAST_FAILURES),
    )
